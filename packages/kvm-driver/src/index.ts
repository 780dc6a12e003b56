export * from './driver.js';
export * from './errors.js';
export { LocalCommandRunner } from './runner.js';
export { Virsh, type VirshCallOptions } from './libvirt/virsh.js';
export { LibvirtDriver, type LibvirtDriverOptions } from './libvirt/driver.js';
export { domainXml, escapeXml, specHash } from './libvirt/xml.js';
export { kvmUsability, bootCheck, domainTypeOverride, type BootCheck, type KvmUsability, type KvmProbeOptions } from './libvirt/kvm-usability.js';
export * from './guest.js';
