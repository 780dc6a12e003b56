#!/usr/bin/env node
import { readOptionalFile, writeConfigFile } from './config-store.js';
import { runCli } from './program.js';

const exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
  readFile: readOptionalFile,
  writeConfig: writeConfigFile,
});
process.exitCode = exitCode;
