// Saved VM state (a desktop's memory, a batch task's checkpoint) is as sensitive as the disk:
// readable by root only. The directory is made 0700 before a save and the file 0600 after it,
// whatever the hypervisor's or the umask's defaults.
import { promises as fs } from 'node:fs';
import path from 'node:path';

/** Makes the file's directory (and missing parents) and restricts the directory to its owner. */
export async function prepareStateFile(file: string): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
}

/** Restricts a written state file to its owner. A file that is not there is left alone (the save reported where it went). */
export async function sealStateFile(file: string): Promise<void> {
  await fs.chmod(file, 0o600).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}
