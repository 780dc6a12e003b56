// `npm run bench -w @deskpool/kvm-driver`: suspend/restore of the tiny guest with 128 MiB and
// 1 GiB of memory (mostly touched), through LibvirtDriver and through raw `virsh` in the same
// run, alternating, so the driver's overhead is a difference of medians measured side by side.
// Writes its figures into bench/results/kvm.json, keeping figures other benches put there.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGuestImage, guestDomainSpec, waitForSerial, type GuestImage } from '../src/guest.js';
import { LibvirtDriver } from '../src/libvirt/driver.js';
import { LocalCommandRunner } from '../src/runner.js';
import { median, round, timed, TimingRunner, writeKvmResults, type Figure } from './shared.js';

const runner = new LocalCommandRunner();
const URI = 'qemu:///system';

async function rawVirsh(...args: string[]): Promise<void> {
  const r = await runner.run(['virsh', '-q', '-c', URI, ...args], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`virsh ${args.join(' ')}: ${r.stderr.trim()}`);
}

interface SuspendRestoreTimes {
  driverSave: number[];
  rawSave: number[];
  driverRestore: number[];
  rawRestore: number[];
  /** Driver time minus the virsh job command inside it, per operation. */
  saveOverhead: number[];
  restoreOverhead: number[];
  imageMiB: number;
}

/** Boots a guest of memoryMiB, fills touchMiB of it, then alternates driver and raw cycles. */
async function suspendRestore(driver: LibvirtDriver, timing: TimingRunner, image: GuestImage, dir: string, memoryMiB: number, touchMiB: number, rounds: number): Promise<SuspendRestoreTimes> {
  const name = `dpt-bench-${memoryMiB}-${randomBytes(3).toString('hex')}`;
  const serialLogPath = join(dir, `${name}.log`);
  const t: SuspendRestoreTimes = { driverSave: [], rawSave: [], driverRestore: [], rawRestore: [], saveOverhead: [], restoreOverhead: [], imageMiB: 0 };
  const paired = async (op: () => Promise<unknown>, total: number[], overhead: number[]): Promise<void> => {
    timing.jobMs = 0;
    const ms = await timed(op);
    total.push(ms);
    overhead.push(ms - timing.jobMs);
  };
  await driver.define(guestDomainSpec({ name, serialLogPath, image, memoryMiB, task: { mode: 'counter', touchMiB } }));
  try {
    await driver.start(name);
    const log = await waitForSerial(serialLogPath, /TOUCHED \d+ MiB|TOUCH-FAILED|Kernel panic/, { timeoutMs: 600_000 });
    if (!/TOUCHED \d+ MiB/.test(log)) throw new Error(`the guest could not fill its memory: ${log.split('\n').find((l) => /TOUCH-FAILED|Kernel panic/.test(l)) ?? ''}`);
    const driverCycle = async (): Promise<void> => {
      await paired(() => driver.managedSave(name), t.driverSave, t.saveOverhead);
      await paired(() => driver.restore(name), t.driverRestore, t.restoreOverhead);
    };
    const rawCycle = async (): Promise<void> => {
      t.rawSave.push(await timed(() => rawVirsh('managedsave', name)));
      t.rawRestore.push(await timed(() => rawVirsh('start', name)));
    };
    // One warm-up cycle each (page cache, first save file allocation), not counted.
    await driver.managedSave(name);
    const st = await runner.run(['stat', '-c', '%s', `/var/lib/libvirt/qemu/save/${name}.save`]);
    t.imageMiB = Math.round(Number(st.stdout.trim()) / 2 ** 20);
    await driver.restore(name);
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) {
        await driverCycle();
        await rawCycle();
      } else {
        await rawCycle();
        await driverCycle();
      }
    }
  } finally {
    await driver.destroy(name).catch(() => undefined);
    await driver.undefine(name).catch(() => undefined);
  }
  return t;
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()[0]?.toFixed(1);
  const figures: Record<string, Figure> = {};
  const image = await ensureGuestImage();
  const timing = new TimingRunner(runner);
  const driver = new LibvirtDriver({ uri: URI, runner: timing });
  const dir = await mkdtemp(join(tmpdir(), 'dpt-kvm-bench-'));
  const overheads: { op: string; ms: number; sideBySide: number }[] = [];
  const sizes = [
    // What the kernel and initramfs leave available (MemAvailable): ~58 MiB of 128, ~858 MiB of 1 GiB.
    { label: '128MiB', memoryMiB: 128, touchMiB: 32, rounds: 5 },
    { label: '1GiB', memoryMiB: 1024, touchMiB: 800, rounds: 3 },
  ];
  try {
    // Per-call cost of the two ways of asking libvirt a question.
    const spawnCalls: number[] = [];
    const sessionCalls: number[] = [];
    for (let i = 0; i < 15; i++) {
      spawnCalls.push(await timed(() => rawVirsh('nodememstats')));
      sessionCalls.push(await timed(() => driver.hostInfo()));
    }
    figures['kvm.virsh_call_ms'] = { value: round(median(spawnCalls)), unit: 'ms', target: null, method: 'one `virsh nodememstats` run as its own process (spawn + connect + call), median of 15' };
    figures['kvm.driver_query_ms'] = { value: round(median(sessionCalls)), unit: 'ms', target: null, method: 'LibvirtDriver.hostInfo() (3 virsh commands through the persistent virsh session), median of 15' };

    for (const s of sizes) {
      try {
        const t = await suspendRestore(driver, timing, image, dir, s.memoryMiB, s.touchMiB, s.rounds);
        const how = `${s.memoryMiB} MiB TCG guest, ${s.touchMiB} MiB filled with random data (save image ${t.imageMiB} MiB); median of ${s.rounds}, alternating with raw virsh in the same run`;
        figures[`kvm.suspend_ms.${s.label}`] = {
          value: round(median(t.driverSave)),
          unit: 'ms',
          target: null,
          method: `LibvirtDriver.managedSave, ${how}`,
          baseline: { name: 'raw virsh managedsave', value: round(median(t.rawSave)) },
        };
        figures[`kvm.restore_ms.${s.label}`] = {
          value: round(median(t.driverRestore)),
          unit: 'ms',
          target: null,
          method: `LibvirtDriver.restore, ${how}`,
          baseline: { name: 'raw virsh start (from managed save)', value: round(median(t.rawRestore)) },
        };
        overheads.push({ op: `suspend.${s.label}`, ms: median(t.saveOverhead), sideBySide: median(t.driverSave) - median(t.rawSave) });
        overheads.push({ op: `restore.${s.label}`, ms: median(t.restoreOverhead), sideBySide: median(t.driverRestore) - median(t.rawRestore) });
      } catch (e) {
        const why = `could not run: ${e instanceof Error ? e.message : String(e)}`;
        figures[`kvm.suspend_ms.${s.label}`] = { value: null, unit: 'ms', target: null, why };
        figures[`kvm.restore_ms.${s.label}`] = { value: null, unit: 'ms', target: null, why };
      }
    }
    const load = `load average ${loadAtStart} at the start, ${loadavg()[0]?.toFixed(1)} at the end, 2 shared cores`;
    for (const o of overheads) {
      figures[`kvm.driver_overhead_ms.${o.op}`] = {
        value: round(o.ms),
        unit: 'ms',
        target: '<= 20',
        method: `median over the rounds of (LibvirtDriver operation time - time of the virsh ${o.op.startsWith('suspend') ? 'managedsave' : 'start'} process it ran), paired per operation; the driver reads the domain state after \`virsh start\` in the same virsh process (\`start x ; domstate x\`, one call on the open connection), which counts in the virsh time. Unpaired, the driver's median minus the median of separate raw virsh runs alternating in the same run is ${round(o.sideBySide)} ms: guest-state and machine-load noise; ${load}`,
      };
    }
  } finally {
    driver.close();
    await rm(dir, { recursive: true, force: true });
  }
  await writeKvmResults(figures);
}


await main();
