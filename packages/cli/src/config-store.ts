import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConfigFile } from './config.js';
import { configFileSchema } from './config.js';

/** Reads a file as UTF-8, or undefined when it does not exist. */
export function readOptionalFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Writes the config file readable by its owner only (it holds a bearer token). Written to a
 * temporary file first and renamed, so a crash never leaves half a config behind.
 */
export function writeConfigFile(path: string, config: ConfigFile): void {
  const checked = configFileSchema.parse(config);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(checked, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
