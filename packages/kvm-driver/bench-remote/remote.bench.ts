// Remote benches (`npx tsx packages/kvm-driver/bench-remote/remote.bench.ts`, root, libvirt):
//   kvm.save_move_restore_ms.512MiB  save to file on one host, SFTP it to the other, restore there
//   kvm.live_migrate_ms.512MiB       live migration between the two hosts
// between this machine (A) and a second libvirt host on it (scripts/testhost.sh). Each round
// runs the driver path and the raw path back to back on the same 512 MiB guest, alternating
// direction A->B / B->A. The raw path does the same operation by hand: virsh save, the file's
// sha256 on the source host, OpenSSH scp, its sha256 on the target host, virsh restore. The
// driver's overhead is paired where it can be (its time minus the virsh process it ran, in the
// same operation) and, for the transfer, the driver's move against the raw move of the same
// round: a saved state's restore time swings by seconds with the guest and the machine's load,
// which an unpaired difference of totals would report as overhead. Merges its figures into bench/results/kvm.json (read-modify-write:
// the local kvm bench writes other kvm.* figures there).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { counterValues, ensureGuestImage, guestDomainSpec, readSerialLog, waitForSerial } from '../src/guest.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';
import { LocalFiles, SftpFiles, type HostFiles } from '../src/remote/host-files.js';
import { moveStateFile } from '../src/remote/sftp-move.js';
import { SshConnection } from '../src/remote/ssh-connection.js';
import type { MigrationTarget } from '../src/driver.js';
import { median, round, timed, TimingRunner, writeKvmResults, type Figure } from '../bench/shared.js';

const execFileP = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const HOST = process.env.DESKPOOL_BENCH_TESTHOST ?? 'dpbench';
const HOST_ADDR = process.env.DESKPOOL_BENCH_TESTHOST_ADDR ?? '10.77.9.2';
const ROUNDS = Number(process.env.DESKPOOL_BENCH_ROUNDS ?? 3);
const MEMORY_MIB = 512;
/** Random data filled into guest memory (slow to generate under TCG on a busy machine). */
const TOUCH_MIB = Number(process.env.DESKPOOL_BENCH_TOUCH_MIB ?? 256);
/** Same path on both hosts, different files: each host has its own /var/lib/libvirt. */
const STATE_DIR = '/var/lib/libvirt/images';

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    return (await execFileP(cmd, args, { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, LC_ALL: 'C' } })).stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.slice(0, 6).join(' ')} failed: ${err.stderr?.trim() || err.message}`);
  }
}

interface Side {
  label: string;
  driver: LibvirtDriver;
  /** Times the virsh job processes the driver runs for this side. */
  timing: TimingRunner;
  /** Runs a command on this host (argv), for the raw path's checksum. */
  exec: (argv: string[]) => Promise<string>;
  files: HostFiles;
  /** virsh -c URI for this host, as seen from here. */
  uri: string;
  /** Where scp finds a file of this host ("" = local path). */
  scpPrefix: string;
  migrateTo: MigrationTarget;
}

async function main(): Promise<void> {
  const figures: Record<string, Figure> = {};
  const image = await ensureGuestImage();
  const up = await run('bash', [join(repo, 'scripts/testhost.sh'), 'up', HOST, HOST_ADDR]);
  const kv = new Map(up.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  const addr = kv.get('addr') ?? HOST_ADDR;
  const rootAddr = kv.get('root_addr') ?? '';
  const key = kv.get('ssh_key') ?? '';
  const knownHosts = kv.get('known_hosts') ?? '';
  const libvirtUri = kv.get('libvirt_uri') ?? `qemu+tcp://${addr}/system`;

  const conn = new SshConnection({ host: addr, privateKeyPath: key, knownHostsPath: knownHosts });
  const sshOpts = ['-i', key, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'];
  const timingA = new TimingRunner();
  const timingB = new TimingRunner();
  const A: Side = { label: 'A', driver: new LibvirtDriver({ runner: timingA }), timing: timingA, exec: (argv) => run(argv[0] ?? '', argv.slice(1)), files: new LocalFiles(), uri: 'qemu:///system', scpPrefix: '', migrateTo: { uri: 'qemu:///system', migrateUri: `tcp://${rootAddr}` } };
  // B's libvirt is reached over TCP by both paths (the raw one is plain virsh -c qemu+tcp://),
  // so the difference measured is the driver's own work plus SFTP+sha256 against scp; driving
  // B's virsh over SSH instead adds one SSH command round trip per virsh call.
  const B: Side = { label: 'B', driver: new LibvirtDriver({ uri: libvirtUri, runner: timingB }), timing: timingB, exec: (argv) => run('ssh', [...sshOpts, `root@${addr}`, argv.join(' ')]), files: new SftpFiles(conn), uri: libvirtUri, scpPrefix: `root@${addr}:`, migrateTo: { uri: libvirtUri, migrateUri: `tcp://${addr}` } };
  const scpOpts = ['-q', ...sshOpts];
  // The raw path's checksum: the same tool the driver runs on each host (see host-files.ts).
  const rawSha = async (side: Side, file: string): Promise<string> => {
    const hex = /^([0-9a-f]{64})/.exec(await side.exec(['openssl', 'dgst', '-sha256', '-r', file]))?.[1];
    if (!hex) throw new Error(`no sha256 of ${file} on ${side.label}`);
    return hex;
  };
  /** Driver time minus the virsh job process time of `side`, for one operation. */
  const paired = async (side: Side, op: () => Promise<unknown>): Promise<{ ms: number; overhead: number }> => {
    side.timing.jobMs = 0;
    const ms = await timed(op);
    return { ms, overhead: ms - side.timing.jobMs };
  };

  const dir = await mkdtemp(join(tmpdir(), 'dpt-bench-remote-'));
  const name = `dpt-benchr-${randomBytes(3).toString('hex')}`;
  const serial = join(dir, `${name}.log`);
  const alive = async (): Promise<void> => {
    const last = Math.max(0, ...counterValues(await readSerialLog(serial)));
    await waitForSerial(serial, (l) => Math.max(0, ...counterValues(l)) > last, { timeoutMs: 120_000, intervalMs: 100 });
  };

  let where: Side = A;
  try {
    await A.driver.define(guestDomainSpec({ name, serialLogPath: serial, image, memoryMiB: MEMORY_MIB, task: { mode: 'counter', touchMiB: TOUCH_MIB } }));
    await A.driver.start(name);
    await waitForSerial(serial, /COUNT 2\r?$/m, { timeoutMs: 900_000, intervalMs: 500 });

    // --- save, move, restore ---------------------------------------------------------
    const smr = { driver: [] as number[], raw: [] as number[], driverMove: [] as number[], rawMove: [] as number[], saveOverhead: [] as number[], restoreOverhead: [] as number[], bytes: 0 };
    try {
      for (let i = 0; i < ROUNDS; i++) {
        // Swap the order each round so both paths run in both directions.
        for (const mode of i % 2 === 0 ? (['driver', 'raw'] as const) : (['raw', 'driver'] as const)) {
          const from = where;
          const to = from === A ? B : A;
          const file = `${STATE_DIR}/${name}-${i}-${mode}.save`;
          let moveMs = 0;
          const ms = await timed(async () => {
            if (mode === 'driver') {
              const save = await paired(from, async () => {
                smr.bytes = (await from.driver.saveToFile(name, file)).bytes;
              });
              moveMs = await timed(() => moveStateFile({ files: from.files, path: file }, { files: to.files, path: file }));
              const restore = await paired(to, () => to.driver.restoreFromFile(file));
              smr.saveOverhead.push(save.overhead);
              smr.restoreOverhead.push(restore.overhead);
            } else {
              await run('virsh', ['-q', '-c', from.uri, 'save', name, file]);
              moveMs = await timed(async () => {
                const sent = await rawSha(from, file);
                await run('scp', [...scpOpts, `${from.scpPrefix}${file}`, `${to.scpPrefix}${file}`]);
                if ((await rawSha(to, file)) !== sent) throw new Error('scp delivered a different file');
              });
              await run('virsh', ['-q', '-c', to.uri, 'restore', file]);
            }
          });
          smr[mode].push(ms);
          (mode === 'driver' ? smr.driverMove : smr.rawMove).push(moveMs);
          await alive();
          // The restore is confirmed (the guest counts on), so both copies may go.
          await from.files.remove(file);
          await to.files.remove(file);
          // save/restore leaves the definition on the source; the guest now lives on `to`.
          await from.driver.undefine(name).catch(() => undefined);
          where = to;
          console.log(`save+move+restore ${mode} ${from.label}->${to.label}: ${Math.round(ms)} ms (move ${Math.round(moveMs)} ms)`);
        }
      }
      const d = median(smr.driver);
      const r = median(smr.raw);
      const saveOh = median(smr.saveOverhead);
      const restoreOh = median(smr.restoreOverhead);
      const moveOh = median(smr.driverMove) - median(smr.rawMove);
      figures['kvm.save_move_restore_ms.512MiB'] = {
        value: round(d),
        unit: 'ms',
        method: `median of ${smr.driver.length}: LibvirtDriver saveToFile + moveStateFile (SFTP via ssh2, sha256 on both hosts) + restoreFromFile (libvirt over TCP), ${MEMORY_MIB} MiB guest with ${TOUCH_MIB} MiB touched, state ${Math.round(smr.bytes / 2 ** 20)} MiB, alternating A->B/B->A; baseline in the same run: virsh save + sha256 + scp + sha256 on the target + virsh restore`,
        baseline: { name: 'raw virsh save + openssl sha256 + OpenSSH scp + openssl sha256 + virsh restore', value: round(r) },
      };
      figures['kvm.driver_overhead_ms.save_move_restore.512MiB'] = {
        value: round(saveOh + moveOh + restoreOh),
        unit: 'ms',
        target: '<= 20',
        method: `sum of: saveToFile minus its virsh save process (median ${round(saveOh)} ms, paired), moveStateFile minus the raw move of the same file by hand (openssl sha256 on the source, scp, openssl sha256 on the target; medians ${round(median(smr.driverMove))} and ${round(median(smr.rawMove))} ms: ${round(moveOh)} ms), restoreFromFile minus its virsh restore process (median ${round(restoreOh)} ms, paired); the unpaired totals differ by ${round(d - r)} ms (restore times swing by seconds between rounds)`,
      };
    } catch (e) {
      const why = `save/move/restore failed: ${(e as Error).message}`.slice(0, 500);
      figures['kvm.save_move_restore_ms.512MiB'] = { value: null, unit: 'ms', why };
      figures['kvm.driver_overhead_ms.save_move_restore.512MiB'] = { value: null, unit: 'ms', target: '<= 20', why };
      console.error(why);
    }

    // --- live migration ----------------------------------------------------------------
    const lm = { driver: [] as number[], raw: [] as number[], overhead: [] as number[] };
    try {
      if ((await where.driver.state(name)) !== 'running') throw new Error(`guest is not running on ${where.label} before the migration rounds`);
      for (let i = 0; i < ROUNDS; i++) {
        // Swap the order each round so both paths run in both directions.
        for (const mode of i % 2 === 0 ? (['driver', 'raw'] as const) : (['raw', 'driver'] as const)) {
          const from = where;
          const to = from === A ? B : A;
          const ms = await timed(async () => {
            if (mode === 'driver') lm.overhead.push((await paired(from, () => from.driver.migrateLive(name, to.migrateTo))).overhead);
            else await run('virsh', ['-q', '-c', from.uri, 'migrate', '--live', '--persistent', '--undefinesource', '--domain', name, '--desturi', to.uri, '--migrateuri', to.migrateTo.migrateUri ?? '']);
          });
          lm[mode].push(ms);
          await alive();
          where = to;
          console.log(`live migration ${mode} ${from.label}->${to.label}: ${Math.round(ms)} ms`);
        }
      }
      const d = median(lm.driver);
      const r = median(lm.raw);
      figures['kvm.live_migrate_ms.512MiB'] = {
        value: round(d),
        unit: 'ms',
        method: `median of ${lm.driver.length}: LibvirtDriver.migrateLive (pre-copy, domjobinfo progress polling) of a ${MEMORY_MIB} MiB guest with ${TOUCH_MIB} MiB touched, TCG, alternating A->B/B->A; baseline in the same run: virsh migrate --live`,
        baseline: { name: 'raw virsh migrate --live', value: round(r) },
      };
      figures['kvm.driver_overhead_ms.live_migrate.512MiB'] = {
        value: round(median(lm.overhead)),
        unit: 'ms',
        target: '<= 20',
        method: `median over the rounds of (LibvirtDriver.migrateLive time - time of the virsh migrate process it ran), paired; the driver's check before (dominfo) and its progress polling count as overhead (without jobStats, as here and as the agent calls it, the target is not queried afterwards); the unpaired medians differ by ${round(d - r)} ms (a TCG guest's pre-copy convergence varies by seconds)`,
      };
    } catch (e) {
      const why = `live migration failed: ${(e as Error).message}`.slice(0, 500);
      figures['kvm.live_migrate_ms.512MiB'] = { value: null, unit: 'ms', why };
      figures['kvm.driver_overhead_ms.live_migrate.512MiB'] = { value: null, unit: 'ms', target: '<= 20', why };
      console.error(why);
    }
  } finally {
    for (const s of [A, B]) {
      await s.driver.destroy(name).catch(() => undefined);
      await s.driver.undefine(name).catch(() => undefined);
    }
    A.driver.close();
    B.driver.close();
    B.files.close();
    conn.close();
    await rm(dir, { recursive: true, force: true });
  }
  await writeKvmResults(figures);
}


try {
  await main();
} catch (e) {
  // Set-up failed (test host, guest boot): the figures are still reported, as null with why.
  const why = `bench set-up failed: ${(e as Error).message}`.slice(0, 500);
  console.error(why);
  await writeKvmResults({
    'kvm.save_move_restore_ms.512MiB': { value: null, unit: 'ms', why },
    'kvm.live_migrate_ms.512MiB': { value: null, unit: 'ms', why },
  });
  // Exit 0: the figures say why they are missing, and a non-zero exit would also null the
  // local kvm bench's figures in the same kvm.json.
}
