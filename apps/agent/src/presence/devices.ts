import { EV_ABS, EV_KEY, EV_REL, EV_REP } from './input-event.js';

export type InputDeviceKind = 'keyboard' | 'pointer' | 'touch' | 'other';

export interface InputDevice {
  name: string;
  /** e.g. "event3": the node under /dev/input. */
  eventNode: string;
  handlers: string[];
  /** The EV bitmap: which event types the device emits. */
  evBits: bigint;
  kind: InputDeviceKind;
}

function hasBit(bits: bigint, bit: number): boolean {
  return ((bits >> BigInt(bit)) & 1n) === 1n;
}

/**
 * Keyboards repeat keys (EV_REP) and have the kbd handler; power buttons and lid switches also
 * have kbd but no EV_REP, and a person does not tap those to get their desktop back.
 */
export function classifyDevice(handlers: readonly string[], evBits: bigint): InputDeviceKind {
  if (hasBit(evBits, EV_REL) || handlers.some((h) => /^mouse\d+$/.test(h))) return 'pointer';
  if (hasBit(evBits, EV_ABS)) return 'touch';
  if (handlers.includes('kbd') && hasBit(evBits, EV_KEY) && hasBit(evBits, EV_REP)) return 'keyboard';
  return 'other';
}

/** Parses /proc/bus/input/devices: blank-line separated blocks of "X: ..." lines. */
export function parseInputDevices(text: string): InputDevice[] {
  const devices: InputDevice[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    let name = '';
    let handlers: string[] = [];
    let evBits = 0n;
    for (const line of block.split('\n')) {
      const nameMatch = /^N: Name="(.*)"\s*$/.exec(line);
      if (nameMatch) name = nameMatch[1] ?? '';
      const handlersMatch = /^H: Handlers=(.*)$/.exec(line);
      if (handlersMatch) handlers = (handlersMatch[1] ?? '').trim().split(/\s+/).filter(Boolean);
      const evMatch = /^B: EV=([0-9a-fA-F]+)\s*$/.exec(line);
      if (evMatch) evBits = BigInt(`0x${evMatch[1]}`);
    }
    const eventNode = handlers.find((h) => /^event\d+$/.test(h));
    if (!eventNode) continue;
    devices.push({ name, eventNode, handlers, evBits, kind: classifyDevice(handlers, evBits) });
  }
  return devices;
}

/** Devices whose activity means a person is at the PC. */
export function activityDevices(devices: readonly InputDevice[]): InputDevice[] {
  return devices.filter((d) => d.kind !== 'other');
}
