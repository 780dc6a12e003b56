/**
 * The kernel's `struct input_event` on 64-bit Linux: struct timeval (two 64-bit longs), then
 * type u16, code u16, value s32, little-endian on the x86-64 and arm64 PCs we run on: 24 bytes.
 */
export const INPUT_EVENT_SIZE = 24;

export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_REL = 0x02;
export const EV_ABS = 0x03;
export const EV_MSC = 0x04;
export const EV_REP = 0x14;

export interface InputEvent {
  /** Kernel timestamp in microseconds since the epoch (informational; the agent's clock decides). */
  timeUs: bigint;
  type: number;
  code: number;
  value: number;
}

/** Key presses, pointer motion and touch/tablet motion are a person at the machine. */
export function isActivity(event: InputEvent): boolean {
  return event.type === EV_KEY || event.type === EV_REL || event.type === EV_ABS;
}

export function decodeInputEvent(buf: Buffer, offset = 0): InputEvent {
  const sec = buf.readBigInt64LE(offset);
  const usec = buf.readBigInt64LE(offset + 8);
  return {
    timeUs: sec * 1_000_000n + usec,
    type: buf.readUInt16LE(offset + 16),
    code: buf.readUInt16LE(offset + 18),
    value: buf.readInt32LE(offset + 20),
  };
}

export function encodeInputEvent(event: InputEvent): Buffer {
  const buf = Buffer.alloc(INPUT_EVENT_SIZE);
  buf.writeBigInt64LE(event.timeUs / 1_000_000n, 0);
  buf.writeBigInt64LE(event.timeUs % 1_000_000n, 8);
  buf.writeUInt16LE(event.type, 16);
  buf.writeUInt16LE(event.code, 18);
  buf.writeInt32LE(event.value, 20);
  return buf;
}

/**
 * Reassembles events from a byte stream. Reads from a FIFO or file may split a struct across
 * chunks (evdev itself never does), so the parser keeps the remainder for the next chunk.
 */
export class InputEventParser {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): InputEvent[] {
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const whole = data.length - (data.length % INPUT_EVENT_SIZE);
    const events: InputEvent[] = [];
    for (let offset = 0; offset < whole; offset += INPUT_EVENT_SIZE) events.push(decodeInputEvent(data, offset));
    this.pending = Buffer.from(data.subarray(whole));
    return events;
  }

  /** Bytes held back waiting for the rest of a struct. */
  get bufferedBytes(): number {
    return this.pending.length;
  }
}
