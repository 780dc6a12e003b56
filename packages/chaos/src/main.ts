#!/usr/bin/env node
// npm run chaos -- --faults 50 --seed 7: exit 0 when every invariant held, 1 on a violation
// (or a crash of the harness), 2 on bad flags.
import { ChaosOptionsInvalid, parseChaosArgs } from './options.js';
import { formatReport } from './report.js';
import { runChaos } from './run.js';

async function main(): Promise<number> {
  let options;
  try {
    options = parseChaosArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof ChaosOptionsInvalid) {
      process.stderr.write(`deskpool chaos: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const result = await runChaos(options, { print: (line) => process.stdout.write(`${line}\n`) });
  process.stdout.write(`${formatReport(result)}\n`);
  return result.violations.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`deskpool chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
