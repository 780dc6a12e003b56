#!/usr/bin/env node
// npm run demo: a small simulated office, one night, end to end (packages/simulator).
// Flags: --real (3 PCs on real libvirt guests, as root), --speed N (simulated seconds per real second), --pcs N, --seed N, --stay,
// --tasks-per-pc N, --task-hours H, --database-url URL, --redis-url URL.
// --days N runs several days from Monday instead (packages/simulator/README.md) and writes a report.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'packages/simulator/dist/index.js');

function build() {
  process.stdout.write('building (npm run build) ...\n');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
}

if (!existsSync(entry) || !existsSync(join(root, 'packages/db/src/generated'))) build();
else {
  // tsc -b only rebuilds what changed: cheap when everything is current.
  try {
    execFileSync('npx', ['tsc', '-b', 'packages/simulator'], { cwd: root, stdio: 'inherit' });
  } catch {
    process.exit(1);
  }
}

const sim = await import(entry);
const argv = process.argv.slice(2);

// --days N: several days of the office from Monday, with a report (JSON + HTML).
if (argv.some((a) => a === '--days' || a.startsWith('--days='))) {
  let fleetOptions;
  try {
    fleetOptions = sim.parseFleetArgs(argv, process.env);
  } catch (err) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  fleetOptions.reportDir ??= join(root, 'packages/simulator/reports', `office-${fleetOptions.pcs}pcs-${fleetOptions.days}d`);
  let fleet;
  try {
    fleet = await sim.runFleet(fleetOptions, { print: (line) => process.stdout.write(`${line}\n`) });
  } catch (err) {
    if (err instanceof sim.ServicesUnavailable) {
      process.stderr.write(`deskpool demo: ${err.message}\n`);
      process.exit(3);
    }
    process.stderr.write(`deskpool demo failed: ${err?.stack ?? err}\n`);
    process.exit(1);
  }
  process.stdout.write(`${sim.formatFleetReport(fleet.report)}\nreport: ${fleet.files.join(', ')}\n`);
  await fleet.close();
  process.exit(fleet.report.mornings.missing === 0 ? 0 : 1);
}

let options;
try {
  options = sim.parseDemoArgs(argv, process.env);
} catch (err) {
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}

let run;
// Ctrl-C during the night stops the demo cleanly (with --real: guests and test hosts removed).
const stop = new AbortController();
const onInterrupt = () => stop.abort();
process.once('SIGINT', onInterrupt);
try {
  run = await sim.runDemoOffice(options, { print: (line) => process.stdout.write(`${line}\n`), signal: stop.signal });
  process.off('SIGINT', onInterrupt);
} catch (err) {
  if (err instanceof sim.DemoStopped) {
    process.stderr.write(`deskpool demo: ${err.message}\n`);
    process.exit(130);
  }
  if (err instanceof sim.ServicesUnavailable) {
    process.stderr.write(`deskpool demo: ${err.message}\n`);
    process.exit(3);
  }
  process.stderr.write(`deskpool demo failed: ${err?.stack ?? err}\n`);
  process.exit(1);
}
process.stdout.write(`${sim.formatSummary(run.summary, options.speed)}\n`);
if (options.stay) {
  process.stdout.write(
    `\nThe API stays up at ${run.apiUrl} (database ${run.databaseUrl}); Ctrl-C to stop. Try:\n` +
      `  curl -H 'Authorization: Bearer ${run.adminToken}' ${run.apiUrl}/api/v1/vms\n` +
      `  Dashboard: ${run.apiUrl}/dashboard (sign in with the admin token ${run.adminToken})\n` +
      `  (Swagger UI at ${run.apiUrl}/docs; the simulated clock keeps running)\n`,
  );
  await new Promise((resolve) => process.once('SIGINT', resolve));
}
await run.close();
process.exit(run.summary.ok ? 0 : 1);
