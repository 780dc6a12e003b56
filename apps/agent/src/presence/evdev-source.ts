import { promises as fs, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../clock.js';
import { activityDevices, parseInputDevices, type InputDevice } from './devices.js';
import { INPUT_EVENT_SIZE, InputEventParser, isActivity } from './input-event.js';
import type { PresenceInput, PresenceSink } from './source.js';

export interface EvdevOptions {
  procDevicesPath?: string;
  devInputDir?: string;
  /** How often to rescan even without a /dev/input notification (udev may create nodes late). */
  rescanMs?: number;
}

/**
 * Keyboards, mice and touch devices read straight from /dev/input/event*. Devices come and go
 * (USB plug/unplug): the set is rescanned when /dev/input changes and every rescanMs.
 */
export class EvdevSource implements PresenceInput {
  readonly kind = 'evdev' as const;
  private readonly open = new Map<string, { handle: fs.FileHandle; device: InputDevice }>();
  private readonly opening = new Set<string>();
  private watcher: FSWatcher | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly procDevicesPath: string;
  private readonly devInputDir: string;
  private readonly rescanMs: number;

  constructor(
    private readonly clock: Clock,
    options: EvdevOptions = {},
  ) {
    this.procDevicesPath = options.procDevicesPath ?? '/proc/bus/input/devices';
    this.devInputDir = options.devInputDir ?? '/dev/input';
    this.rescanMs = options.rescanMs ?? 10_000;
  }

  /** Device nodes currently read (for diagnostics). */
  get devices(): InputDevice[] {
    return [...this.open.values()].map((o) => o.device);
  }

  async start(sink: PresenceSink): Promise<void> {
    await this.rescan(sink);
    if (this.open.size + this.opening.size === 0) sink.warn(`no keyboard, mouse or touch device found in ${this.procDevicesPath}; waiting for one to be plugged in`);
    try {
      this.watcher = watch(this.devInputDir, () => void this.rescan(sink));
    } catch {
      sink.warn(`cannot watch ${this.devInputDir}; falling back to rescanning every ${this.rescanMs} ms`);
    }
    this.rescanTimer = setInterval(() => void this.rescan(sink), this.rescanMs);
    this.rescanTimer.unref();
  }

  private async rescan(sink: PresenceSink): Promise<void> {
    if (this.stopped) return;
    let text: string;
    try {
      text = await fs.readFile(this.procDevicesPath, 'utf8');
    } catch (err) {
      sink.warn(`cannot read ${this.procDevicesPath}: ${(err as Error).message}`);
      return;
    }
    for (const device of activityDevices(parseInputDevices(text))) {
      if (this.open.has(device.eventNode) || this.opening.has(device.eventNode)) continue;
      void this.openDevice(device, sink);
    }
  }

  /** Not awaited by rescan: one slow device node must not hold up the others. */
  private async openDevice(device: InputDevice, sink: PresenceSink): Promise<void> {
    const nodePath = path.join(this.devInputDir, device.eventNode);
    this.opening.add(device.eventNode);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(nodePath, 'r');
    } catch (err) {
      sink.warn(`cannot open ${nodePath} (${device.name}): ${(err as Error).message}; the agent needs read access to input devices`);
      return;
    } finally {
      this.opening.delete(device.eventNode);
    }
    if (this.stopped) {
      await handle.close().catch(() => undefined);
      return;
    }
    this.open.set(device.eventNode, { handle, device });
    void this.readLoop(device, handle, sink);
  }

  /**
   * evdev delivers whole structs per read. The read blocks a libuv pool thread, which is why the
   * agent's entry point sizes UV_THREADPOOL_SIZE for a handful of devices.
   */
  private async readLoop(device: InputDevice, handle: fs.FileHandle, sink: PresenceSink): Promise<void> {
    const parser = new InputEventParser();
    const buf = Buffer.alloc(INPUT_EVENT_SIZE * 64);
    try {
      while (!this.stopped) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        if (parser.push(buf.subarray(0, bytesRead)).some(isActivity)) sink.activity(this.clock.now(), 'evdev');
      }
    } catch (err) {
      // ENODEV is the normal end of an unplugged device.
      if ((err as NodeJS.ErrnoException).code !== 'ENODEV') sink.warn(`reading ${device.eventNode} (${device.name}): ${(err as Error).message}`);
    } finally {
      this.open.delete(device.eventNode);
      await handle.close().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    await Promise.all([...this.open.values()].map((o) => o.handle.close().catch(() => undefined)));
    this.open.clear();
  }
}
