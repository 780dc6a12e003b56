#!/usr/bin/env node
// evdev reads block a libuv pool thread per input device; leave room for file I/O and DNS.
process.env.UV_THREADPOOL_SIZE ??= '16';

import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { acceleratedClock, systemClock } from './clock.js';
import { AgentRejected, startAgent } from './agent.js';
import { ConfigInvalid, loadConfig, socketPathOf } from './config.js';
import { NotEnrolled, readCredential } from './credential.js';
import { createDriver } from './driver.js';
import { EnrollmentRefused, enroll } from './enroll.js';
import { collectInventory } from './inventory.js';
import { sendLocal } from './local-socket.js';

/** Exit codes a service manager (or an admin's script) can act on. */
export const EXIT = { OK: 0, FAILURE: 1, CONFIG: 2, REJECTED: 3, ENROLLMENT_REFUSED: 4, NOT_ENROLLED: 5 } as const;

const log = (message: string): void => {
  process.stderr.write(`${new Date().toISOString()} deskpool-agent: ${message}\n`);
};

interface CommonFlags {
  config?: string;
  stateDir?: string;
  server?: string;
}

async function configFrom(flags: CommonFlags, extra: Record<string, unknown> = {}) {
  return loadConfig({
    ...(flags.config ?? process.env.DESKPOOL_AGENT_CONFIG ? { file: flags.config ?? process.env.DESKPOOL_AGENT_CONFIG } : {}),
    env: process.env,
    flags: { stateDir: flags.stateDir, serverUrl: flags.server, ...extra },
  });
}

async function runCommand(flags: CommonFlags & { idleThreshold?: string }): Promise<number> {
  const config = await configFrom(flags, { idleThresholdSeconds: flags.idleThreshold === undefined ? undefined : Number(flags.idleThreshold) });
  const credential = await readCredential(config.stateDir);
  const clock = config.clockSpeed === 1 ? systemClock : acceleratedClock(config.clockSpeed);
  const agent = await startAgent({
    config,
    credential,
    driver: createDriver(config.driver),
    clock,
    libvirtUri: config.driver.kind === 'libvirt' ? config.driver.uri : null,
    log,
  });
  log(`running (state dir ${config.stateDir}, server ${config.serverUrl})`);
  const stop = (): void => void agent.stop();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await agent.done;
  return EXIT.OK;
}

async function enrollCommand(flags: CommonFlags & { token: string }): Promise<number> {
  const config = await configFrom(flags);
  const inventory = await collectInventory(config.stateDir, config.driver.kind === 'libvirt' ? config.driver.uri : null);
  const { response, credentialFile } = await enroll({
    serverUrl: config.serverUrl,
    token: flags.token,
    stateDir: config.stateDir,
    inventory,
    ...(config.caFile ? { ca: await readFile(config.caFile) } : {}),
  });
  process.stdout.write(`enrolled as host ${response.hostName} (${response.hostId}) in pool ${response.poolId}; credential stored in ${credentialFile}\n`);
  return EXIT.OK;
}

async function signinCommand(flags: { user: string; socket?: string; stateDir?: string }): Promise<number> {
  const socketPath = flags.socket ?? socketPathOf({ stateDir: flags.stateDir ?? process.env.DESKPOOL_AGENT_STATE_DIR ?? '/var/lib/deskpool-agent', socketPath: process.env.DESKPOOL_AGENT_SOCKET });
  const reply = await sendLocal(socketPath, { type: 'signin', user: flags.user });
  if (!reply.ok) {
    process.stderr.write(`deskpool-agent: signin refused: ${reply.error}\n`);
    return EXIT.CONFIG;
  }
  return EXIT.OK;
}

function explain(err: unknown): number {
  if (err instanceof AgentRejected) {
    const revoked = err.code === 'CREDENTIAL_REVOKED';
    process.stderr.write(
      revoked
        ? `deskpool-agent: this PC's credential has been revoked by an administrator (${err.message}). It will not connect again; ask for a new enrollment token and run \`deskpool-agent enroll\`.\n`
        : `deskpool-agent: the control plane refused this agent: ${err.code}: ${err.message}\n`,
    );
    return EXIT.REJECTED;
  }
  if (err instanceof EnrollmentRefused) {
    process.stderr.write(`deskpool-agent: enrollment refused (${err.code}): ${err.message}\n`);
    return EXIT.ENROLLMENT_REFUSED;
  }
  if (err instanceof ConfigInvalid) {
    process.stderr.write(`deskpool-agent: ${err.message}\n`);
    return EXIT.CONFIG;
  }
  if (err instanceof NotEnrolled) {
    process.stderr.write(`deskpool-agent: ${err.message}\n`);
    return EXIT.NOT_ENROLLED;
  }
  process.stderr.write(`deskpool-agent: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.FAILURE;
}

const program = new Command('deskpool-agent').description('deskpool agent: presence, enrollment and hypervisor commands for one PC');
const common = (cmd: Command): Command =>
  cmd
    .addOption(new Option('--config <file>', 'JSON config file (also DESKPOOL_AGENT_CONFIG)'))
    .addOption(new Option('--state-dir <dir>', 'where the credential, journal and socket live'))
    .addOption(new Option('--server <url>', 'control-plane base URL, e.g. https://deskpool.example.org'));

let action: Promise<number> = Promise.resolve(EXIT.OK);
common(program.command('run', { isDefault: true }).description('run the agent'))
  .addOption(new Option('--idle-threshold <seconds>', 'seconds without input before the PC counts as idle'))
  .action((flags: CommonFlags & { idleThreshold?: string }) => {
    action = runCommand(flags);
  });
common(program.command('enroll').description('trade a one-time enrollment token for this PC\'s credential'))
  .requiredOption('--token <token>', 'enrollment token from `deskpool enrollment-tokens create`')
  .action((flags: CommonFlags & { token: string }) => {
    action = enrollCommand(flags);
  });
program
  .command('signin')
  .description('tell the running agent who signed in at this PC (for the display manager\'s session hook)')
  .requiredOption('--user <name>', 'user name')
  .option('--socket <path>', 'the agent\'s local socket')
  .option('--state-dir <dir>', 'the agent\'s state dir (socket at <dir>/agent.sock)')
  .action((flags: { user: string; socket?: string; stateDir?: string }) => {
    action = signinCommand(flags);
  });

program.parse(process.argv);
action.then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(explain(err)),
);
