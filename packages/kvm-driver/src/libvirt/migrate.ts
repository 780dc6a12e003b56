// Live migration between libvirt hosts. Owned by the remote/migration work; LibvirtDriver
// delegates migrateLive() here.
import type { MigrateOptions, MigrateResult, MigrationTarget } from '../driver.js';
import type { Virsh } from './virsh.js';

export async function migrateLive(virsh: Virsh, name: string, target: MigrationTarget, opts: MigrateOptions = {}): Promise<MigrateResult> {
  void virsh;
  void target;
  void opts;
  throw new Error(`live migration of ${name} is not implemented yet (packages/kvm-driver/src/libvirt/migrate.ts)`);
}
