import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, writeSync, closeSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock, systemClock } from '../src/clock.js';
import { classifyDevice, parseInputDevices } from '../src/presence/devices.js';
import { EventStreamSource } from '../src/presence/event-stream-source.js';
import { EV_ABS, EV_KEY, EV_MSC, EV_REL, EV_SYN, INPUT_EVENT_SIZE, InputEventParser, encodeInputEvent, isActivity, type InputEvent } from '../src/presence/input-event.js';
import { parseLogindIdle, pickSeatSession } from '../src/presence/logind-source.js';
import { PresenceMonitor } from '../src/presence/monitor.js';
import { TraceSource, parseTrace } from '../src/presence/trace-source.js';
import { PresenceTracker, type PresenceChange } from '../src/presence/tracker.js';

const PROC_DEVICES = `I: Bus=0019 Vendor=0000 Product=0001 Version=0000
N: Name="Power Button"
P: Phys=LNXPWRBN/button/input0
S: Sysfs=/devices/LNXSYSTM:00/LNXPWRBN:00/input/input0
U: Uniq=
H: Handlers=kbd event0
B: PROP=0
B: EV=3
B: KEY=10000000000000 0

I: Bus=0011 Vendor=0001 Product=0001 Version=ab41
N: Name="AT Translated Set 2 keyboard"
P: Phys=isa0060/serio0/input0
H: Handlers=sysrq kbd leds event1
B: PROP=0
B: EV=120013
B: KEY=402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe
B: MSC=10
B: LED=7

I: Bus=0003 Vendor=046d Product=c077 Version=0111
N: Name="Logitech USB Optical Mouse"
H: Handlers=mouse0 event2
B: PROP=0
B: EV=17
B: KEY=70000 0 0 0 0
B: REL=903

I: Bus=0018 Vendor=04f3 Product=3098 Version=0100
N: Name="ELAN Touchpad"
H: Handlers=event3
B: PROP=5
B: EV=b
B: KEY=e520 10000 0 0 0 0
B: ABS=2e0800000000003

I: Bus=0000 Vendor=0000 Product=0000 Version=0000
N: Name="HDA Intel PCH Headphone"
H: Handlers=event4
B: PROP=0
B: EV=21
B: SW=4
`;

function ev(type: number, code = 30, value = 1, timeUs = 1_764_147_600_123_456n): InputEvent {
  return { timeUs, type, code, value };
}

describe('input_event parsing', () => {
  it('decodes the 24-byte struct field by field', () => {
    const buf = Buffer.alloc(INPUT_EVENT_SIZE);
    buf.writeBigInt64LE(1_764_147_600n, 0);
    buf.writeBigInt64LE(123_456n, 8);
    buf.writeUInt16LE(EV_KEY, 16);
    buf.writeUInt16LE(30, 18); // KEY_A
    buf.writeInt32LE(-1, 20);
    expect(new InputEventParser().push(buf)).toEqual([{ timeUs: 1_764_147_600_123_456n, type: EV_KEY, code: 30, value: -1 }]);
  });

  it('reassembles structs split across reads at any boundary (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.integer({ min: 0, max: 0xffff }), code: fc.integer({ min: 0, max: 0xffff }), value: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), timeUs: fc.bigInt({ min: 0n, max: 2n ** 50n }) }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }),
        (events, cuts) => {
          const bytes = Buffer.concat(events.map(encodeInputEvent));
          const parser = new InputEventParser();
          const out: InputEvent[] = [];
          let offset = 0;
          let i = 0;
          while (offset < bytes.length) {
            const size = cuts[i++ % cuts.length] ?? 1;
            out.push(...parser.push(bytes.subarray(offset, offset + size)));
            offset += size;
          }
          expect(out).toEqual(events);
          expect(parser.bufferedBytes).toBe(0);
        },
      ),
    );
  });

  it('counts keys, relative and absolute motion as activity, not sync or misc', () => {
    expect([EV_KEY, EV_REL, EV_ABS].map((t) => isActivity(ev(t)))).toEqual([true, true, true]);
    expect([EV_SYN, EV_MSC].map((t) => isActivity(ev(t)))).toEqual([false, false]);
  });
});

describe('/proc/bus/input/devices', () => {
  it('finds keyboards, mice and touchpads and leaves out power buttons and jacks', () => {
    const devices = parseInputDevices(PROC_DEVICES);
    expect(devices.map((d) => [d.name, d.eventNode, d.kind])).toEqual([
      ['Power Button', 'event0', 'other'],
      ['AT Translated Set 2 keyboard', 'event1', 'keyboard'],
      ['Logitech USB Optical Mouse', 'event2', 'pointer'],
      ['ELAN Touchpad', 'event3', 'touch'],
      ['HDA Intel PCH Headphone', 'event4', 'other'],
    ]);
  });

  it('classifies from handlers and EV bits', () => {
    expect(classifyDevice(['kbd', 'event9'], 0x120013n)).toBe('keyboard');
    expect(classifyDevice(['kbd', 'event9'], 0x3n)).toBe('other');
    expect(classifyDevice(['mouse1', 'event9'], 0x7n)).toBe('pointer');
  });

  it('parses this machine\'s own device list without error', () => {
    const text = execFileSync('cat', ['/proc/bus/input/devices']).toString();
    expect(Array.isArray(parseInputDevices(text))).toBe(true);
  });
});

describe('presence tracker', () => {
  const THRESHOLD = 10 * 60_000;

  it('goes idle only after a whole threshold without activity, with idle-since = last activity', () => {
    const t = new PresenceTracker(THRESHOLD, 0, 'fifo');
    expect(t.activity(1_000, 'fifo')).toEqual({ state: 'present', idleSince: null, at: 1_000, source: 'fifo' });
    expect(t.activity(1_000, 'fifo')).toBeNull();
    expect(t.tick(1_000 + THRESHOLD - 1)).toBeNull();
    expect(t.tick(1_000 + THRESHOLD)).toEqual({ state: 'idle', idleSince: 1_000, at: 1_000 + THRESHOLD, source: 'fifo' });
    expect(t.tick(1_000 + 2 * THRESHOLD)).toBeNull();
  });

  it('is present on the very first activity after idle, and reports it once', () => {
    const t = new PresenceTracker(THRESHOLD, 0, 'fifo');
    t.tick(THRESHOLD);
    expect(t.activity(THRESHOLD + 5, 'evdev')).toEqual({ state: 'present', idleSince: null, at: THRESHOLD + 5, source: 'evdev' });
    expect(t.activity(THRESHOLD + 6, 'evdev')).toBeNull();
  });

  it('takes a logind idle hint as last activity but lets later input from another source win', () => {
    const t = new PresenceTracker(THRESHOLD, 0, 'logind');
    expect(t.current.state).toBe('unknown');
    t.activity(THRESHOLD + 100, 'evdev');
    expect(t.idleHint(0, THRESHOLD + 200, 'logind')).toBeNull();
    expect(t.tick(2 * THRESHOLD + 100)?.idleSince).toBe(THRESHOLD + 100);
  });

  it('never reports the same state twice in a row (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: THRESHOLD * 2 })), { maxLength: 60 }), (steps) => {
        const t = new PresenceTracker(THRESHOLD, 0, 'trace');
        let now = 0;
        let last: string | undefined;
        for (const [isActivityStep, dt] of steps) {
          now += dt;
          const change = isActivityStep ? t.activity(now, 'trace') : t.tick(now);
          if (change) {
            expect(change.state).not.toBe(last);
            last = change.state;
          }
        }
      }),
    );
  });
});

describe('presence monitor with an injected clock', () => {
  it('turns idle at the threshold and present at the tap of a trace', async () => {
    const clock = new ManualClock(1_000_000);
    const changes: PresenceChange[] = [];
    const source = new TraceSource(clock, [{ offsetMs: 30 * 60_000, event: 'activity' }]);
    const monitor = new PresenceMonitor(clock, 10 * 60_000, [source], (c) => changes.push(c), () => undefined);
    await monitor.start();
    clock.advance(10 * 60_000 - 1);
    expect(changes).toEqual([]);
    clock.advance(1);
    expect(changes).toEqual([{ state: 'idle', idleSince: 1_000_000, at: 1_000_000 + 10 * 60_000, source: 'trace' }]);
    clock.advance(20 * 60_000);
    expect(changes[1]).toEqual({ state: 'present', idleSince: null, at: 1_000_000 + 30 * 60_000, source: 'trace' });
    clock.advance(10 * 60_000);
    expect(changes[2]).toMatchObject({ state: 'idle', idleSince: 1_000_000 + 30 * 60_000 });
    await monitor.stop();
  });

  it('parses trace files and names the bad line', () => {
    expect(parseTrace('# morning\n{"offsetMs":5,"event":"activity"}\n{"offsetMs":1,"event":"activity"}\n').map((l) => l.offsetMs)).toEqual([1, 5]);
    expect(() => parseTrace('{"offsetMs":-1,"event":"activity"}')).toThrow(/line 1/);
  });
});

describe('logind fallback parsing', () => {
  it('reads IdleHint and IdleSinceHint (µs)', () => {
    expect(parseLogindIdle('IdleHint=yes\nIdleSinceHint=1764147600123456\n')).toEqual({ idle: true, idleSince: 1764147600123 });
    expect(parseLogindIdle('IdleHint=no\nIdleSinceHint=0\n')).toEqual({ idle: false, idleSince: null });
    expect(() => parseLogindIdle('')).toThrow(/IdleHint/);
  });

  it('picks the seat0 session', () => {
    expect(pickSeatSession('    c1 1000 alice - \n     2 1001 bob seat0 tty2\n')).toBe('2');
    expect(pickSeatSession('')).toBeNull();
  });
});

describe('FIFO and file sources drive the real parser', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reports activity for key events written in pieces to a FIFO, and nothing for EV_SYN', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dp-agent-fifo-'));
    const fifo = path.join(dir, 'input');
    execFileSync('mkfifo', [fifo]);
    const seen: number[] = [];
    const source = new EventStreamSource(fifo, systemClock, 'fifo');
    await source.start({ activity: (at) => seen.push(at), idleHint: () => undefined, warn: () => undefined });
    const fd = openSync(fifo, 'w');
    writeSync(fd, encodeInputEvent(ev(EV_SYN, 0, 0)));
    const key = encodeInputEvent(ev(EV_KEY));
    writeSync(fd, key.subarray(0, 10));
    closeSync(fd); // a writer going away must not end the source
    const fd2 = openSync(fifo, 'w');
    writeSync(fd2, key.subarray(10));
    closeSync(fd2);
    await expect.poll(() => seen.length).toBe(1);
    await source.stop();
  });

  it('keeps reading the FIFO after a garbage collection (the descriptor must not be collected)', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dp-agent-fifo-gc-'));
    const fifo = path.join(dir, 'input');
    execFileSync('mkfifo', [fifo]);
    const seen: number[] = [];
    const source = new EventStreamSource(fifo, systemClock, 'fifo');
    await source.start({ activity: (at) => seen.push(at), idleHint: () => undefined, warn: () => undefined });
    v8.setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    const fd = openSync(fifo, 'w');
    writeSync(fd, encodeInputEvent(ev(EV_KEY)));
    closeSync(fd);
    await expect.poll(() => seen.length).toBe(1);
    await source.stop();
  });

  it('follows a regular file and reports only what is appended', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dp-agent-file-'));
    const file = path.join(dir, 'events.bin');
    writeFileSync(file, encodeInputEvent(ev(EV_KEY)));
    const seen: number[] = [];
    const source = new EventStreamSource(file, systemClock, 'fifo');
    await source.start({ activity: (at) => seen.push(at), idleHint: () => undefined, warn: () => undefined });
    appendFileSync(file, Buffer.concat([encodeInputEvent(ev(EV_REL, 0, 3)), encodeInputEvent(ev(EV_SYN, 0, 0))]));
    await expect.poll(() => seen.length).toBe(1);
    await source.stop();
  });
});
