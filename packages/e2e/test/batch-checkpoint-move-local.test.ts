// The same promise (batch-scenario.ts) in a LOCAL-storage pool: the checkpoint lies on A's disk,
// so the planner sends move-state to A first (moveCheckpoint) and run-batch to B only once the
// move succeeded. Both agents run in this process and the checkpoint directory is this machine's
// on both PCs, so the SFTP copy finds the identical file in place (changed: false); the copy
// itself is tested in apps/agent/test/hotdesk-suspended-libvirt.test.ts.
import { expect } from 'vitest';
import { describeBatchCheckpointResume } from './batch-scenario.js';

const TESTHOST_ADDR = '10.77.90.2';

describeBatchCheckpointResume({
  title: "a checkpoint on a PC's own disk is moved to the PC the task resumes on (real libvirt)",
  it: 'checkpoints at the tap on A, moves the checkpoint to B, resumes there and finishes counting on',
  testhost: { name: 'dptbatchl', addr: TESTHOST_ADDR },
  storageMode: 'local',
  moveStateOverSsh: true,
  afterResume: async ({ office, pcA, task }) => {
    // The checkpoint lay on A: it was moved (on A) before the resume (on B), under B's generation.
    const opsOnB = async () => office.prisma.operation.findMany({ where: { taskId: task.id, generation: task.generation }, orderBy: { createdAt: 'asc' } });
    await expect
      .poll(async () => (await opsOnB()).map((o) => [o.kind, o.hostId === pcA.hostId ? 'A' : 'B', o.status]), { timeout: 60_000 })
      .toEqual([
        ['move-state', 'A', 'succeeded'],
        ['run-batch', 'B', expect.stringMatching(/^(running|succeeded|sent)$/)],
      ]);
    expect((await opsOnB())[0]?.params).toMatchObject({ path: `/var/lib/deskpool/checkpoints/${task.id}.save`, targetHost: TESTHOST_ADDR });
  },
});
