#!/usr/bin/env node
import { readOptionalFile, writeConfigFile } from './config-store.js';
import { runCli } from './program.js';

try {
  process.exitCode = await runCli(process.argv.slice(2), {
    stdout: (text) => process.stdout.write(`${text}\n`),
    stderr: (text) => process.stderr.write(`${text}\n`),
    env: process.env,
    readFile: readOptionalFile,
    writeConfig: writeConfigFile,
  });
} catch (e) {
  // Not one of the CLI's own errors: a bug. Say so plainly rather than dumping only a stack.
  process.stderr.write(`deskpool: unexpected internal error (please report it): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
}
