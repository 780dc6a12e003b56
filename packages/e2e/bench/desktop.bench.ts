// desktop.tap_to_running_ms.p50: a key press written to the agent's FIFO → the desktop domain
// running (libvirt's own "Started" lifecycle event), through the real API, scheduler worker,
// Redis, PostgreSQL, agent and libvirt; the desktop was suspended by the scheduler (managed save).
// desktop.tap_overhead_ms.p50: the same minus the raw `virsh start` from the managed save of the
// same guest: the very `virsh start` process the agent's driver ran for that tap, spawn →
// "Started", so the hypervisor's part is subtracted within each operation. A restore under TCG
// swings by seconds from one to the next; a raw `virsh start` run separately (alternating, same
// run, also reported) cannot be subtracted from a tap without that noise.
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path, { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LocalCommandRunner, type CommandResult, type CommandRunner, type InteractiveProcess, type RunOptions } from '@deskpool/kvm-driver';
import { startOffice, waitUntil, watchLifecycle, type Office } from '../src/index.js';

/** The agent's virsh runner, noting when each `virsh start` (a restore) is spawned. */
class StartSpawnRecorder implements CommandRunner {
  readonly description = 'local (start spawns recorded)';
  readonly starts: number[] = [];
  private readonly inner = new LocalCommandRunner();
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    // The driver runs `start x ; domstate x` as one virsh process.
    if (argv.some((a) => /^start(\s|$)/.test(a))) this.starts.push(performance.now());
    return this.inner.run(argv, opts);
  }
  stream(argv: readonly string[], opts: { signal: AbortSignal }): AsyncIterable<string> {
    return this.inner.stream(argv, opts);
  }
  interactive(argv: readonly string[]): InteractiveProcess {
    return this.inner.interactive(argv);
  }
}

const execFileP = promisify(execFile);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const URI = 'qemu:///system';
const resultsFile = fileURLToPath(new URL('../../../bench/results/desktop.json', import.meta.url));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};
const round = (x: number): number => Math.round(x * 10) / 10;

async function settled(office: Office, vmId: string): Promise<void> {
  await waitUntil('every operation of the desktop has finished', async () => (await office.prisma.operation.count({ where: { vmId, settledAt: null } })) === 0, 120_000, 50);
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg()[0] ?? 0;
  const office = await startOffice();
  try {
    office.startWorker();
    const spawns = new StartSpawnRecorder();
    const pc = await office.addHost({ name: 'pc-bench', driverRunner: spawns });
    const desk = await office.addDesktop(pc, { tag: 'bench' });
    const watch = await watchLifecycle(URI, desk.domain);
    const taps: number[] = [];
    const raws: number[] = [];
    /** Per tap: tap → the agent's `virsh start` spawned = (tap → running) − (its virsh start → running). */
    const paired: number[] = [];
    const phases: { tapToCommitted: number; committedToAgent: number; agentToRunning: number }[] = [];
    try {
      for (let i = 0; i < RUNS; i++) {
        // Evening: the PC is idle (the agent says so a second after the last input) and the
        // scheduler suspends the desktop.
        await waitUntil('the PC is idle', async () => (await office.prisma.host.findUniqueOrThrow({ where: { id: pc.hostId } })).presenceState === 'idle', 30_000);
        office.clock.advance(2 * 60_000);
        await office.timer('idleCheck');
        await office.waitForVm(desk.vmId, 'suspended', (v) => v.state === 'SUSPENDED');
        await settled(office, desk.vmId);
        if ((await pc.driver.state(desk.domain)) !== 'saved') throw new Error('the desktop is not in a managed save after suspending');

        // Morning: the tap.
        const started = watch.next(/Started/);
        spawns.starts.length = 0;
        const t0 = performance.now();
        const tapWall = Date.now();
        await pc.tap();
        const t1 = await started;
        taps.push(t1 - t0);
        const spawnedAt = spawns.starts[0];
        if (spawnedAt === undefined || spawns.starts.length !== 1) throw new Error(`expected one virsh start by the agent for the tap, saw ${spawns.starts.length}`);
        paired.push(spawnedAt - t0);
        await office.waitForVm(desk.vmId, 'running', (v) => v.state === 'RUNNING');
        await settled(office, desk.vmId);
        const restore = await office.prisma.operation.findFirst({ where: { vmId: desk.vmId, kind: 'restore' }, orderBy: { createdAt: 'desc' } });
        const begin = (await readFile(path.join(pc.stateDir, 'journal.jsonl'), 'utf8'))
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { t: string; key: string; at: string })
          .find((l) => l.t === 'begin' && l.key === restore?.idempotencyKey);
        if (restore && begin) {
          // The agent's journal is on the office clock (shifted forward by the advances); the
          // operation row's created_at is PostgreSQL's now().
          const shift = office.clock.now() - Date.now();
          const runningWall = tapWall + (t1 - t0);
          const agentBegan = Date.parse(begin.at) - shift;
          phases.push({
            tapToCommitted: restore.createdAt.getTime() - tapWall,
            committedToAgent: agentBegan - restore.createdAt.getTime(),
            agentToRunning: runningWall - agentBegan,
          });
        }

        // The same guest, the hypervisor alone: managed save, then a timed `virsh start`.
        await execFileP('virsh', ['-c', URI, 'managedsave', desk.domain]);
        const rawStarted = watch.next(/Started/);
        const r0 = performance.now();
        await execFileP('virsh', ['-c', URI, 'start', desk.domain]);
        raws.push((await rawStarted) - r0);
        console.log(`run ${i + 1}/${RUNS}: tap → running ${round(taps.at(-1) ?? NaN)} ms, raw virsh start ${round(raws.at(-1) ?? NaN)} ms`);
      }
    } finally {
      watch.close();
    }
    const counted = await desk.neverRebooted();
    if (!counted) throw new Error('the guest rebooted during the runs: a restore did not restore');
    const loadAfter = os.loadavg()[0] ?? 0;
    const unpaired = taps.map((t, i) => t - (raws[i] ?? NaN));
    const load = `load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after, on ${os.cpus().length} cores shared with other work`;
    const phaseNote = phases.length
      ? `; median phases: tap → restore operation committed ${round(median(phases.map((p) => p.tapToCommitted)))} ms, committed → agent begins it ${round(median(phases.map((p) => p.committedToAgent)))} ms, agent begins → running ${round(median(phases.map((p) => p.agentToRunning)))} ms`
      : '';
    const figures = {
      'desktop.tap_to_running_ms.p50': {
        value: round(median(taps)),
        unit: 'ms',
        method: `median of ${RUNS} taps (key event written to the agent's FIFO → libvirt "Started" lifecycle event) on a 256 MiB counter guest under QEMU TCG suspended by the scheduler (managed save); real API, one in-process scheduler worker, Redis, PostgreSQL, in-process agent; ${load}${phaseNote}`,
        baseline: { name: 'raw virsh start from managed save, same guest, alternating', value: round(median(raws)) },
      },
      'desktop.tap_overhead_ms.p50': {
        value: round(median(paired)),
        unit: 'ms',
        target: '<= 100',
        method: `median over ${RUNS} taps of (tap → running) minus (the raw \`virsh start\` from managed save that the agent's driver ran for that tap, from its spawn → running), both timed to libvirt's "Started" event: the time from the key event written to the FIFO to the hypervisor being asked (agent → API → scheduler → PostgreSQL → Redis → API → agent → driver checks → virsh spawned); per tap ${paired.map(round).join(', ')} ms. Unpaired, against separate raw \`virsh start\` runs of the same guest alternating with the taps (${round(Math.min(...raws))}–${round(Math.max(...raws))} ms, a spread far above the overhead), the median difference was ${round(median(unpaired))} ms; ${load}`,
        baseline: { name: 'raw virsh start from managed save (separate runs, alternating)', value: round(median(raws)) },
      },
      // The control plane's part alone, which the hypervisor's swings on a shared machine do not blur.
      'desktop.tap_to_agent_command_ms.p50': phases.length
        ? {
            value: round(median(phases.map((p) => p.tapToCommitted + p.committedToAgent))),
            unit: 'ms',
            method: `median of ${phases.length} taps: key event written to the FIFO → the agent journals the restore command it received (agent → API → scheduler queue → plan and commit in PostgreSQL → Redis → API → agent); ${load}`,
          }
        : { value: null, unit: 'ms', why: 'no restore operation or agent journal entry was found to time' },
    };
    await mkdir(dirname(resultsFile), { recursive: true });
    const tmp = `${resultsFile}.${process.pid}.tmp.json`;
    await writeFile(tmp, `${JSON.stringify({ date: new Date().toISOString(), machine: `${os.cpus().length} cores; guests under QEMU TCG`, figures }, null, 2)}\n`);
    await rename(tmp, resultsFile);
    for (const [k, v] of Object.entries(figures)) console.log(`${k}: ${v.value} ${v.unit}`);
    console.log(`taps: ${taps.map(round).join(', ')}; raw: ${raws.map(round).join(', ')}${phaseNote}`);
  } finally {
    await office.close();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
