// The Batcher behind heartbeats and greetings writes one batch at a time: calls made meanwhile
// wait for the next batch instead of taking another pooled connection.
import { describe, expect, it } from 'vitest';
import { Batcher } from '../src/agent/batcher.js';

/** A write whose batches are answered by the test, one by one. */
function controlledWrite() {
  const calls: { items: number[]; answer(): void; fail(err: Error): void }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const write = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const done = () => (inFlight -= 1);
      calls.push({ items, answer: () => (done(), resolve(items.map((i) => `ok-${i}`))), fail: (err) => (done(), reject(err)) });
    });
  return { calls, write, maxInFlight: () => maxInFlight };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('writes one batch at a time; calls made during a write go in the next batch, each answered with its own answer', async () => {
    const w = controlledWrite();
    const batcher = new Batcher(w.write, 60_000, 2);
    const answers = [1, 2, 3, 4, 5].map((i) => batcher.add(i));
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([[1, 2]]);
    w.calls[0]!.answer();
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([[1, 2], [3, 4]]);
    const flushed = batcher.flush();
    w.calls[1]!.answer();
    await tick();
    expect(w.calls.map((c) => c.items)).toEqual([[1, 2], [3, 4], [5]]);
    w.calls[2]!.answer();
    await flushed;
    expect(await Promise.all(answers)).toEqual(['ok-1', 'ok-2', 'ok-3', 'ok-4', 'ok-5']);
    expect(w.maxInFlight()).toBe(1);
  });

  it("a failed write rejects its own batch's calls only", async () => {
    const w = controlledWrite();
    const batcher = new Batcher(w.write, 60_000, 2);
    const first = [1, 2].map((i) => batcher.add(i));
    const second = batcher.add(3);
    await tick();
    w.calls[0]!.fail(new Error('database gone'));
    await expect(Promise.all(first)).rejects.toThrow('database gone');
    const flushed = batcher.flush();
    await tick();
    w.calls[1]!.answer();
    await flushed;
    expect(await second).toBe('ok-3');
  });

  it('writes a partial batch after its delay', async () => {
    const w = controlledWrite();
    const batcher = new Batcher(w.write, 5, 100);
    const answer = batcher.add(7);
    await new Promise((r) => setTimeout(r, 30));
    expect(w.calls.map((c) => c.items)).toEqual([[7]]);
    w.calls[0]!.answer();
    expect(await answer).toBe('ok-7');
  });
});
