// Commands end to end on a real libvirt domain (the tiny test guest under QEMU emulation): the
// API sends, a real agent process carries them out through LibvirtDriver, results land in the
// operations table. Also: duplicates not executed twice, stale generations refused, and an
// agent killed mid-command reporting the result after it restarts.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtDriver, counterValues, ensureGuestImage, guestDomainSpec, readSerialLog, waitForSerial, GUEST_READY_BANNER } from '@deskpool/kvm-driver';
import type { CommandFrameInput } from '@deskpool/protocol';
import { hostChannel } from '../src/agent/index.js';
import { buildAgent, createEnrollmentToken, runAgentCli, startApi, tempDir, waitUntil, type AgentProcess, type ApiUnderTest } from './agent-harness.js';

const libvirt = new LibvirtDriver({ uri: 'qemu:///system' });

describe('agent commands on a real libvirt domain', () => {
  let api: ApiUnderTest;
  let state: { dir: string; remove(): void };
  let agent: AgentProcess | undefined;
  let hostId: string;
  let vmId: string;
  const domainName = `dpt-agent-${randomUUID().slice(0, 8)}`;
  let serialLog: string;

  const agentEnv = (): Record<string, string> => ({
    DESKPOOL_SERVER_URL: api.url,
    DESKPOOL_AGENT_STATE_DIR: state.dir,
    DESKPOOL_AGENT_PRESENCE_SOURCES: JSON.stringify([{ kind: 'trace', path: path.join(state.dir, 'empty.trace') }]),
    DESKPOOL_AGENT_DRIVER: JSON.stringify({ kind: 'libvirt', uri: 'qemu:///system' }),
    DESKPOOL_AGENT_RECONNECT_INITIAL_MS: '200',
    DESKPOOL_AGENT_RECONNECT_MAX_MS: '2000',
  });

  /** Records the operation the way the scheduler does, then sends it. */
  async function command(key: string, kind: 'start' | 'suspend' | 'restore', generation: number, params: Record<string, unknown> = {}, via: 'registry' | 'redis' = 'registry') {
    await api.db.prisma.operation.create({ data: { idempotencyKey: key, hostId, vmId, kind, generation, params: params as object } });
    const frame: CommandFrameInput = { type: 'command', idempotencyKey: key, kind, target: { vmId, domainName, generation }, params } as CommandFrameInput;
    if (via === 'redis') await api.redis.publish(hostChannel(`${api.prefix}agent:`, hostId), JSON.stringify(frame));
    else await api.gateway.sendCommand(hostId, frame);
  }
  const op = (key: string) => api.db.prisma.operation.findUniqueOrThrow({ where: { idempotencyKey: key } });
  const finished = async (key: string) => {
    await expect.poll(async () => (await op(key)).status, { timeout: 60_000, interval: 200 }).toMatch(/succeeded|failed|refused/);
    return op(key);
  };
  const journalLines = () => readFileSync(path.join(state.dir, 'journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { t: string; key: string });
  const events = async () => (await api.redis.xrange(`${api.prefix}events`, '-', '+')).map(([, fields]) => JSON.parse(fields[3] ?? '{}') as { type: string; idempotencyKey?: string; replayed?: boolean; outcome?: string });

  beforeAll(async () => {
    buildAgent();
    await ensureGuestImage();
    api = await startApi();
    state = tempDir('agent-libvirt');
    serialLog = path.join(state.dir, `${domainName}.serial.log`);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(state.dir, 'empty.trace'), '');
    const { token } = await createEnrollmentToken(api);
    const enroll = runAgentCli(['enroll', '--token', token], agentEnv());
    if ((await enroll.exited) !== 0) throw new Error(`enrollment failed: ${enroll.output()}`);
    hostId = (JSON.parse(readFileSync(path.join(state.dir, 'credential.json'), 'utf8')) as { hostId: string }).hostId;
    const user = await api.db.prisma.user.create({ data: { name: `u-${randomUUID().slice(0, 6)}` } });
    const vm = await api.db.prisma.desktopVm.create({
      data: { name: domainName, ownerUserId: user.id, poolId: api.poolId, vcpus: 1, memoryMiB: 128, maxVcpus: 1, maxMemoryMiB: 128, diskLocation: 'none', currentHostId: hostId, fencingGeneration: 1 },
    });
    vmId = vm.id;
    agent = runAgentCli(['run'], agentEnv());
    await waitUntil('the agent is connected', () => api.gateway.registry.isConnectedHere(hostId));
  });

  afterAll(async () => {
    await agent?.kill('SIGTERM');
    await libvirt.destroy(domainName).catch(() => undefined);
    await libvirt.undefine(domainName).catch(() => undefined);
    await api?.close();
    state?.remove();
  });

  it('starts, suspends and restores the guest; the guest really runs on afterwards', async () => {
    const spec = guestDomainSpec({ name: domainName, serialLogPath: serialLog, task: { mode: 'counter' } });
    await command('op-start-0001', 'start', 1, { spec });
    expect(await finished('op-start-0001')).toMatchObject({ status: 'succeeded' });
    await waitForSerial(serialLog, (log) => log.includes(GUEST_READY_BANNER) && counterValues(log).length >= 2, { timeoutMs: 60_000 });

    await command('op-suspend-0001', 'suspend', 1);
    expect(await finished('op-suspend-0001')).toMatchObject({ status: 'succeeded', result: { state: 'saved' } });
    expect(await libvirt.state(domainName)).toBe('saved');
    const countAtSuspend = Math.max(...counterValues(await readSerialLog(serialLog)));

    // Sent through Redis, as a scheduler worker (or another API process) does.
    await command('op-restore-0001', 'restore', 1, {}, 'redis');
    expect(await finished('op-restore-0001')).toMatchObject({ status: 'succeeded' });
    expect(await libvirt.state(domainName)).toBe('running');
    // The counter continues from where it stopped: the same guest, not a reboot.
    await waitForSerial(serialLog, (log) => Math.max(...counterValues(log)) > countAtSuspend + 1, { timeoutMs: 30_000 });
    const values = counterValues(await readSerialLog(serialLog));
    expect(values.indexOf(1, 1)).toBe(-1);

    const audit = await api.db.prisma.auditEvent.findMany({ where: { entityType: 'operation', action: 'operation.succeeded' } });
    expect(audit.length).toBeGreaterThanOrEqual(3);
    // The agent reports its domains' states after each command.
    await expect
      .poll(async () => (JSON.parse((await api.redis.get(`${api.prefix}domains:${hostId}`)) ?? '{"domains":[]}') as { domains: { domainName: string; state: string }[] }).domains.find((d) => d.domainName === domainName)?.state, { timeout: 20_000 })
      .toBe('running');
  });

  it('does not execute a duplicated command twice: the repeat is answered from the journal', async () => {
    await command('op-suspend-0002', 'suspend', 2);
    expect(await finished('op-suspend-0002')).toMatchObject({ status: 'succeeded' });
    await api.gateway.sendCommand(hostId, { type: 'command', idempotencyKey: 'op-suspend-0002', kind: 'suspend', target: { vmId, domainName, generation: 2 }, params: {} });
    await expect.poll(async () => (await events()).some((e) => e.type === 'op-result' && e.idempotencyKey === 'op-suspend-0002' && e.replayed === true), { timeout: 15_000 }).toBe(true);
    expect(journalLines().filter((l) => l.t === 'begin' && l.key === 'op-suspend-0002')).toHaveLength(1);
    expect(await libvirt.state(domainName)).toBe('saved');
  });

  it('refuses a command whose fencing generation is older than one already accepted', async () => {
    await command('op-restore-stale', 'restore', 1);
    const refused = await finished('op-restore-stale');
    expect(refused.status).toBe('refused');
    expect(refused.error).toMatch(/STALE_GENERATION/);
    expect(await libvirt.state(domainName)).toBe('saved');
  });

  it('does not lose the result of a command when the agent is killed mid-command', { timeout: 180_000 }, async () => {
    await command('op-restore-0002', 'restore', 2);
    expect(await finished('op-restore-0002')).toMatchObject({ status: 'succeeded' });

    await command('op-suspend-0003', 'suspend', 2);
    // Kill the agent as soon as it has journaled the command, i.e. while it is carrying it out.
    await expect.poll(() => journalLines().some((l) => l.t === 'begin' && l.key === 'op-suspend-0003'), { timeout: 15_000, interval: 20 }).toBe(true);
    await (agent as AgentProcess).kill('SIGKILL');
    const interruptedBeforeEnd = !journalLines().some((l) => l.t === 'end' && l.key === 'op-suspend-0003');
    // The restarted agent finds the command unfinished in its journal and judges it by the
    // domain's actual state (libvirt may still be finishing the save its dead client asked for).
    agent = runAgentCli(['run'], agentEnv());
    const result = await finished('op-suspend-0003');
    expect(journalLines().filter((l) => l.key === 'op-suspend-0003').map((l) => l.t)).toEqual(['begin', 'end']);
    const actual = await libvirt.state(domainName);
    // Whatever happened, the reported result is the truth about the domain.
    expect({ status: result.status, actual }).toSatisfy(({ status, actual: a }) => (status === 'succeeded' && a === 'saved') || (status === 'failed' && a !== 'saved'));
    if (interruptedBeforeEnd) expect(`${JSON.stringify(result.result)} ${result.error ?? ''}`).toMatch(/interrupted by an agent restart/);
    if (actual !== 'saved') {
      // The save did not survive its client; the control plane retries under a new key.
      await command('op-suspend-0004', 'suspend', 2);
      expect(await finished('op-suspend-0004')).toMatchObject({ status: 'succeeded' });
    }

    await command('op-restore-0003', 'restore', 3);
    expect(await finished('op-restore-0003')).toMatchObject({ status: 'succeeded' });
    expect(await libvirt.state(domainName)).toBe('running');
  });
});
