// virsh error text (captured from libvirt 9.0 on this machine) -> typed errors.
import { describe, expect, it } from 'vitest';
import { classifyVirshError, DomainNotFound, HostUnreachable, HypervisorFailure, InsufficientResources, InvalidSpec, InvalidState, LibvirtDown, MigrationFailed } from '../src/errors.js';

const ctx = { operation: 'start', domain: 'dpt-a', uri: 'qemu:///system' };

describe('classifyVirshError', () => {
  it('maps an unknown domain', () => {
    const e = classifyVirshError("error: failed to get domain 'dpt-a'\n", ctx);
    expect(e).toBeInstanceOf(DomainNotFound);
    expect(e.code).toBe('DOMAIN_NOT_FOUND');
  });

  it('maps a daemon that does not answer to LibvirtDown, an unreachable host to HostUnreachable', () => {
    const down = classifyVirshError("error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n", ctx);
    expect(down).toBeInstanceOf(LibvirtDown);
    expect(down.hint).toMatch(/libvirtd/);
    const ssh = classifyVirshError('error: failed to connect to the hypervisor\nerror: Cannot recv data: ssh: connect to host pc7 port 22: No route to host: Connection reset by peer\n', { ...ctx, uri: 'qemu+ssh://pc7/system' });
    expect(ssh).toBeInstanceOf(HostUnreachable);
    const foreign = classifyVirshError('error: failed to connect to the hypervisor\nerror: packet 1213486156 bytes received from server too large, want 33554432\n', ctx);
    expect(foreign).toBeInstanceOf(HostUnreachable);
  });

  it('maps a full disk during save to InsufficientResources(disk)', () => {
    const e = classifyVirshError(
      "error: Failed to save domain 'dpt-a' to /tmp/t/x.state\nerror: operation failed: /usr/lib/libvirt/libvirt_iohelper: failure with /tmp/t/x.state: Unable to write /tmp/t/x.state: No space left on device\n",
      { ...ctx, operation: 'saveToFile' },
    );
    expect(e).toBeInstanceOf(InsufficientResources);
    expect((e as InsufficientResources).resource).toBe('disk');
  });

  it('maps QEMU failing to allocate guest memory to InsufficientResources(memory)', () => {
    const e = classifyVirshError("error: Failed to start domain 'dpt-a'\nerror: internal error: qemu unexpectedly closed the monitor: cannot set up guest memory 'pc.ram': Cannot allocate memory\n", ctx);
    expect(e).toBeInstanceOf(InsufficientResources);
    expect((e as InsufficientResources).resource).toBe('memory');
  });

  it('maps a wrong-state request to InvalidState, a bad definition to InvalidSpec keeping the reason', () => {
    expect(classifyVirshError('error: Requested operation is not valid: domain is not running\n', { ...ctx, operation: 'pause', state: 'shutoff' })).toBeInstanceOf(InvalidState);
    const spec = classifyVirshError("error: Failed to define domain from /tmp/x.xml\nerror: unsupported configuration: Emulator '/usr/bin/qemu-system-x86_64' does not support virt type 'kvm'\n", { ...ctx, operation: 'define' });
    expect(spec).toBeInstanceOf(InvalidSpec);
    expect(spec.message).toContain("does not support virt type 'kvm'");
  });

  it('keeps the hypervisor reason of a failed migration', () => {
    const e = classifyVirshError('error: operation failed: migration out job: unexpectedly failed\n', { ...ctx, operation: 'migrate' });
    expect(e).toBeInstanceOf(MigrationFailed);
    expect((e as MigrationFailed).reason).toContain('unexpectedly failed');
  });

  it('keeps unmapped text whole in a HypervisorFailure', () => {
    const e = classifyVirshError('error: something new\n', ctx);
    expect(e).toBeInstanceOf(HypervisorFailure);
    expect(e.detail).toContain('something new');
    expect(e.toJSON()).toMatchObject({ code: 'HYPERVISOR_ERROR', message: 'start failed: something new' });
  });
});
