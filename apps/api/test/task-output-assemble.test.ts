import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { assemble, gapMarker, type OutputChunk } from '../src/task-output/assemble.js';

const c = (generation: number, offset: number, data: string): OutputChunk => ({ generation, offset, data });

describe('assembling a task console from stored chunks', () => {
  it('concatenates continuous chunks and says where it ended', () => {
    const out = assemble([c(1, 0, 'one\n'), c(1, 4, 'two\n')], null);
    expect(out).toMatchObject({ text: 'one\ntwo\n', position: { generation: 1, end: 8 }, gaps: [], stoppedAtGap: false });
  });

  it('marks a gap instead of inventing the missing bytes', () => {
    const out = assemble([c(1, 0, 'abc'), c(1, 10, 'xyz')], null);
    expect(out.text).toBe(`abc${gapMarker(7)}xyz`);
    expect(out.gaps).toEqual([{ generation: 1, start: 3, end: 10 }]);
  });

  it('shows only the new bytes of an overlapping chunk', () => {
    expect(assemble([c(1, 0, 'abcdef'), c(1, 3, 'defghi'), c(1, 2, 'cd')], null).text).toBe('abcdefghi');
  });

  it('continues across generations: a new console at 0, or the same stream at its end', () => {
    expect(assemble([c(1, 0, '1\n2\n'), c(2, 0, '3\n4\n')], null).text).toBe('1\n2\n3\n4\n');
    expect(assemble([c(1, 0, '1\n2\n'), c(2, 4, '3\n')], null).text).toBe('1\n2\n3\n');
    expect(assemble([c(1, 0, '1\n'), c(2, 5, '3\n')], null).text).toBe(`1\n${gapMarker(3)}3\n`);
  });

  it('starts a read where the previous one ended and skips what it already showed', () => {
    const first = assemble([c(1, 0, 'abc')], null);
    const next = assemble([c(1, 0, 'abc'), c(1, 3, 'def')], first.position);
    expect(next.text).toBe('def');
    expect(next.position).toEqual({ generation: 1, end: 6 });
  });

  it('can stop in front of a gap, keeping what came before it', () => {
    const out = assemble([c(1, 0, 'abc'), c(1, 5, 'fg')], null, { stopAtGap: true });
    expect(out).toMatchObject({ text: 'abc', position: { generation: 1, end: 3 }, stoppedAtGap: true });
  });

  it('handles multi-byte UTF-8 by bytes, as offsets count them', () => {
    expect(assemble([c(1, 0, 'é'), c(1, 2, 'ü')], null).text).toBe('éü');
  });

  it('never loses a byte of any split of a stream, in any chunking, with replays', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), fc.array(fc.nat(), { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 5 }), (text, cuts, replays) => {
        const bytes = Buffer.from(text.replace(/[^\x20-\x7e]/g, 'x'), 'utf8');
        const points = [...new Set([0, ...cuts.map((n) => n % bytes.length), bytes.length])].sort((a, b) => a - b);
        const chunks = points.slice(0, -1).map((start, i) => c(1, start, bytes.subarray(start, points[i + 1]).toString('utf8')));
        const withReplays = [...chunks, ...replays.map((n) => chunks[n % chunks.length]!)].sort((a, b) => a.offset - b.offset);
        expect(assemble(withReplays, null).text).toBe(bytes.toString('utf8'));
      }),
    );
  });
});
