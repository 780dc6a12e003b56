export * from './driver.js';
export * from './errors.js';
export { LocalCommandRunner } from './runner.js';
export { Virsh, type VirshCallOptions } from './libvirt/virsh.js';
