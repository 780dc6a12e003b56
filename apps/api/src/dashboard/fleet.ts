import type { PrismaClient } from '@deskpool/db';

/**
 * What a PC is doing, as the dashboard colours it. Checked in this order: a sleeping or
 * unreachable PC first, then a person at it (presence always wins), then what runs on it.
 */
export const PC_STATES = ['asleep', 'offline', 'present', 'moving', 'batch', 'idle', 'suspended', 'free'] as const;
export type PcState = (typeof PC_STATES)[number];

export const PC_STATE_MEANING: Record<PcState, string> = {
  asleep: 'put to sleep by power management',
  offline: 'agent not connected',
  present: 'owner present',
  moving: 'a desktop is being suspended, restored or migrated here',
  batch: 'batch work running',
  idle: 'desktop running, nobody at the PC',
  suspended: "desktop suspended, PC free for batch work",
  free: 'on, nothing running',
};

export interface HostFacts {
  onlineState: string;
  presence: string;
  asleep: boolean;
  batchTasks: number;
  batchCores: number;
  desktopsRunning: number;
  desktopsMoving: number;
  /** The owner's desktop (or one whose saved state is here) is suspended. */
  desktopsSuspended: number;
}

export function classifyPc(h: HostFacts): PcState {
  if (h.asleep) return 'asleep';
  if (h.onlineState !== 'online') return 'offline';
  if (h.presence === 'present') return 'present';
  if (h.desktopsMoving > 0) return 'moving';
  if (h.batchTasks > 0) return 'batch';
  if (h.desktopsRunning > 0) return 'idle';
  if (h.desktopsSuspended > 0) return 'suspended';
  return 'free';
}

/**
 * Estimated power draw of one PC, in watts: the same per-state figures the demo office uses
 * (packages/simulator: 30 W on and idle, +15 W per running desktop, +10 W per busy batch core),
 * 2 W asleep, nothing known (0) for an offline PC.
 */
export const POWER_MODEL = { pcOn: 30, desktop: 15, batchCore: 10, asleep: 2 } as const;

export function powerWatts(h: HostFacts): number {
  if (h.asleep) return POWER_MODEL.asleep;
  if (h.onlineState !== 'online') return 0;
  return POWER_MODEL.pcOn + POWER_MODEL.desktop * (h.desktopsRunning + h.desktopsMoving) + POWER_MODEL.batchCore * h.batchCores;
}

/** An always-on office: every PC on with its desktop running. */
export const ALWAYS_ON_WATTS_PER_PC = POWER_MODEL.pcOn + POWER_MODEL.desktop;

export interface PcTile extends HostFacts {
  id: string;
  name: string;
  poolId: string;
  owner: string | null;
  drained: boolean;
  state: PcState;
  powerWatts: number;
}

export interface Fleet {
  pcs: PcTile[];
  counts: Record<PcState, number>;
  powerWatts: number;
  alwaysOnWatts: number;
  desktopsRunning: number;
  tasksRunning: number;
}

interface Row {
  id: string;
  name: string;
  pool_id: string;
  owner: string | null;
  online_state: string;
  presence_state: string;
  asleep: boolean;
  drained: boolean;
  batch_tasks: number;
  batch_cores: number;
  desktops_running: number;
  desktops_moving: number;
  desktops_suspended: number;
}

/** Every PC (or one pool's) with what it is doing: one query. */
export async function readFleet(prisma: PrismaClient, poolId?: string): Promise<Fleet> {
  const rows = await prisma.$queryRaw<Row[]>`
    SELECT h.id::text, h.name, h.pool_id::text, u.name AS owner, h.online_state::text, h.presence_state::text,
           h.asleep, h.drained,
           COALESCE(t.tasks, 0)::int AS batch_tasks, COALESCE(t.cores, 0)::float8 AS batch_cores,
           COALESCE(v.running, 0)::int AS desktops_running, COALESCE(v.moving, 0)::int AS desktops_moving,
           (COALESCE(so.n, 0) + COALESCE(sh.n, 0))::int AS desktops_suspended
    FROM hosts h
    LEFT JOIN users u ON u.id = h.owner_user_id
    LEFT JOIN (
      SELECT t.host_id, count(*) AS tasks, sum(COALESCE((j.spec->>'cores')::float8, 1)) AS cores
      FROM batch_tasks t JOIN batch_jobs j ON j.id = t.job_id
      WHERE t.state IN ('placed', 'running', 'checkpointing', 'stopping') AND t.host_id IS NOT NULL
      GROUP BY t.host_id
    ) t ON t.host_id = h.id
    LEFT JOIN (
      SELECT current_host_id AS host_id,
             count(*) FILTER (WHERE state = 'RUNNING') AS running,
             count(*) FILTER (WHERE state IN ('SUSPENDING', 'RESTORING', 'MIGRATING')) AS moving
      FROM desktop_vms WHERE current_host_id IS NOT NULL GROUP BY current_host_id
    ) v ON v.host_id = h.id
    LEFT JOIN (
      SELECT owner_user_id, count(*) AS n FROM desktop_vms WHERE state = 'SUSPENDED' GROUP BY owner_user_id
    ) so ON so.owner_user_id = h.owner_user_id
    LEFT JOIN (
      SELECT saved_state_host_id, count(*) AS n FROM desktop_vms WHERE state = 'SUSPENDED' AND saved_state_host_id IS NOT NULL GROUP BY saved_state_host_id
    ) sh ON sh.saved_state_host_id = h.id
    WHERE ${poolId ?? null}::uuid IS NULL OR h.pool_id = ${poolId ?? null}::uuid
    ORDER BY h.name`;
  const counts = Object.fromEntries(PC_STATES.map((s) => [s, 0])) as Record<PcState, number>;
  let power = 0;
  let desktopsRunning = 0;
  let tasksRunning = 0;
  const pcs = rows.map((r): PcTile => {
    const facts: HostFacts = {
      onlineState: r.online_state,
      presence: r.presence_state,
      asleep: r.asleep,
      batchTasks: r.batch_tasks,
      batchCores: r.batch_cores,
      desktopsRunning: r.desktops_running,
      desktopsMoving: r.desktops_moving,
      desktopsSuspended: r.desktops_suspended,
    };
    const state = classifyPc(facts);
    const watts = powerWatts(facts);
    counts[state] += 1;
    power += watts;
    desktopsRunning += r.desktops_running;
    tasksRunning += r.batch_tasks;
    return {
      id: r.id,
      name: r.name,
      poolId: r.pool_id,
      owner: r.owner,
      drained: r.drained,
      ...facts,
      state,
      powerWatts: watts,
    };
  });
  return { pcs, counts, powerWatts: power, alwaysOnWatts: ALWAYS_ON_WATTS_PER_PC * rows.length, desktopsRunning, tasksRunning };
}
