import { constants, open as openFd, promises as fs, watch, type FSWatcher } from 'node:fs';
import net from 'node:net';
import type { PresenceSource } from '@deskpool/protocol';
import type { Clock } from '../clock.js';
import { InputEventParser, isActivity } from './input-event.js';
import type { PresenceInput, PresenceSink } from './source.js';

/**
 * Reads kernel input_event structs from a FIFO or a regular file that something else writes:
 * a bridge from another input stack, or a test driving the real parser. A FIFO is opened
 * read-write so it never reports end-of-file when a writer closes; a regular file is followed
 * like `tail -f`.
 */
export class EventStreamSource implements PresenceInput {
  readonly kind: PresenceSource;
  private socket: net.Socket | undefined;
  private watcher: FSWatcher | undefined;
  private fileHandle: fs.FileHandle | undefined;
  private stopped = false;
  private readonly parser = new InputEventParser();

  constructor(
    private readonly path: string,
    private readonly clock: Clock,
    kind: PresenceSource = 'fifo',
  ) {
    this.kind = kind;
  }

  async start(sink: PresenceSink): Promise<void> {
    const stat = await fs.stat(this.path);
    const onData = (chunk: Buffer): void => {
      for (const event of this.parser.push(chunk)) if (isActivity(event)) sink.activity(this.clock.now(), this.kind);
    };
    if (stat.isFIFO()) {
      // A plain descriptor, not a FileHandle: an unreferenced FileHandle is closed when it is
      // garbage-collected, which silently cut the socket off from the FIFO (taps were lost).
      const fd = await new Promise<number>((resolve, reject) => openFd(this.path, constants.O_RDWR | constants.O_NONBLOCK, (err, d) => (err ? reject(err) : resolve(d))));
      const socket = new net.Socket({ fd, readable: true, writable: false });
      // The socket owns the descriptor from here on; closing it closes the fd.
      socket.on('data', onData);
      socket.on('error', (err) => sink.warn(`presence FIFO ${this.path}: ${err.message}`));
      this.socket = socket;
      return;
    }
    if (!stat.isFile()) throw new Error(`presence input ${this.path} is neither a FIFO nor a regular file`);
    const handle = await fs.open(this.path, 'r');
    this.fileHandle = handle;
    let offset = stat.size; // only what is appended from now on is activity
    let reading = false;
    const readNew = async (): Promise<void> => {
      if (reading || this.stopped) return;
      reading = true;
      try {
        for (;;) {
          const buf = Buffer.alloc(64 * 1024);
          const { bytesRead } = await handle.read(buf, 0, buf.length, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          onData(buf.subarray(0, bytesRead));
        }
      } catch (err) {
        sink.warn(`presence file ${this.path}: ${(err as Error).message}`);
      } finally {
        reading = false;
      }
    };
    this.watcher = watch(this.path, () => void readNew());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.socket?.destroy();
    this.watcher?.close();
    await this.fileHandle?.close();
  }
}
