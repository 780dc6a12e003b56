import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';
import { EvdevSource } from '../src/presence/evdev-source.js';
import { EV_KEY, EV_REL, encodeInputEvent } from '../src/presence/input-event.js';

// This machine has no input devices, so device nodes are stood in for by FIFOs carrying the
// kernel's struct input_event; the discovery, plug/unplug handling and parsing are the real code.
// Writers open the FIFOs read-write so opening never blocks the test's own thread.
const device = (name: string, handlers: string, ev: string) => `I: Bus=0003 Vendor=0001 Product=0001 Version=0001\nN: Name="${name}"\nH: Handlers=${handlers}\nB: EV=${ev}\n`;

describe('evdev source', () => {
  let dir: string;
  let source: EvdevSource | undefined;
  afterEach(async () => {
    await source?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads keyboards and mice listed in /proc/bus/input/devices, follows plug and unplug', async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dpt-evdev-'));
    const proc = path.join(dir, 'devices');
    const devInput = path.join(dir, 'input');
    execFileSync('mkdir', [devInput]);
    writeFileSync(proc, [device('Power Button', 'kbd event0', '3'), device('USB Keyboard', 'sysrq kbd leds event1', '120013')].join('\n'));
    execFileSync('mkfifo', [path.join(devInput, 'event0'), path.join(devInput, 'event1')]);

    const activity: number[] = [];
    const warnings: string[] = [];
    source = new EvdevSource(systemClock, { procDevicesPath: proc, devInputDir: devInput, rescanMs: 100 });
    await source.start({ activity: (at) => activity.push(at), idleHint: () => undefined, warn: (m) => warnings.push(m) });

    const keyboard = openSync(path.join(devInput, 'event1'), 'r+');
    await expect.poll(() => source?.devices.map((d) => d.name)).toEqual(['USB Keyboard']);
    writeSync(keyboard, encodeInputEvent({ timeUs: 1n, type: EV_KEY, code: 30, value: 1 }));
    await expect.poll(() => activity.length).toBe(1);

    // A mouse is plugged in: it appears in the device list and under /dev/input.
    execFileSync('mkfifo', [path.join(devInput, 'event2')]);
    writeFileSync(proc, [device('Power Button', 'kbd event0', '3'), device('USB Keyboard', 'sysrq kbd leds event1', '120013'), device('USB Mouse', 'mouse0 event2', '17')].join('\n'));
    const mouse = openSync(path.join(devInput, 'event2'), 'r+');
    await expect.poll(() => source?.devices.map((d) => d.name).sort()).toEqual(['USB Keyboard', 'USB Mouse']);
    writeSync(mouse, encodeInputEvent({ timeUs: 2n, type: EV_REL, code: 0, value: -4 }));
    await expect.poll(() => activity.length).toBe(2);

    // Unplugged: its node goes away; the source lets go of it.
    writeFileSync(proc, [device('Power Button', 'kbd event0', '3'), device('USB Keyboard', 'sysrq kbd leds event1', '120013')].join('\n'));
    closeSync(mouse);
    rmSync(path.join(devInput, 'event2'));
    await expect.poll(() => source?.devices.map((d) => d.name)).toEqual(['USB Keyboard']);
    writeFileSync(proc, device('Power Button', 'kbd event0', '3'));
    closeSync(keyboard);
    await expect.poll(() => source?.devices).toEqual([]);
    expect(warnings).toEqual([]);
  });
});
