// Reading a batch guest's serial console log as it grows. Real guests write a file (libvirt
// `<serial type='file'>`); the simulated hypervisor keeps its consoles in memory.
import { promises as fs } from 'node:fs';
import { SimulatedDriver, type HypervisorDriver } from '@deskpool/kvm-driver';

export interface ConsoleLog {
  /** Current length in bytes (0 when there is no log yet). */
  size(path: string): Promise<number>;
  /** Up to maxBytes from offset (fewer at the end of the log). */
  read(path: string, offset: number, maxBytes: number): Promise<Buffer>;
}

export const fileConsoleLog: ConsoleLog = {
  async size(path) {
    return fs.stat(path).then((s) => s.size, (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return 0;
      throw err;
    });
  },
  async read(path, offset, maxBytes) {
    const handle = await fs.open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (!handle) return Buffer.alloc(0);
    try {
      const buf = Buffer.alloc(maxBytes);
      const { bytesRead } = await handle.read(buf, 0, maxBytes, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  },
};

/** The consoles of a SimulatedDriver's guests (demo and simulator runs). */
export function simulatedConsoleLog(driver: SimulatedDriver): ConsoleLog {
  const bytes = (path: string) => Buffer.from(driver.serialLog(path), 'utf8');
  return {
    size: (path) => Promise.resolve(bytes(path).length),
    read: (path, offset, maxBytes) => Promise.resolve(bytes(path).subarray(offset, offset + maxBytes)),
  };
}

/** The console reader that fits the driver the agent runs with. */
export function consoleLogFor(driver: HypervisorDriver): ConsoleLog {
  return driver instanceof SimulatedDriver ? simulatedConsoleLog(driver) : fileConsoleLog;
}

/**
 * The longest prefix of `buf` that ends on a UTF-8 character boundary (a chunk cut in the middle
 * of a character would be garbled on both sides). Returns the whole buffer when it is all
 * continuation bytes, so a broken log still moves forward.
 */
export function utf8Prefix(buf: Buffer): Buffer {
  let end = buf.length;
  // Step back over at most 3 continuation bytes to the lead byte of the last character.
  let i = end - 1;
  while (i >= 0 && end - i <= 4 && (buf[i]! & 0xc0) === 0x80) i -= 1;
  if (i < 0 || end - i > 4) return buf;
  const lead = buf[i]!;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  if (end - i < need) end = i;
  return end === 0 ? buf : buf.subarray(0, end);
}
