// Pure: stored console chunks → the text a reader sees. No I/O.

/** One stored piece of a task's console output. */
export interface OutputChunk {
  generation: number;
  /** Byte offset of `data` (UTF-8) in the console stream. */
  offset: number;
  data: string;
}

/** How far a reader has got: the end of the last byte it was shown. */
export interface LogPosition {
  generation: number;
  /** Byte offset just past what was shown. */
  end: number;
}

export interface AssembleOptions {
  /**
   * Stop in front of a gap instead of marking it (a follower waits a little, since a missing
   * piece may still arrive as a replay); the result says where it stopped.
   */
  stopAtGap?: boolean;
}

export interface Assembled {
  text: string;
  /** Where the next read continues; null when nothing was ever read. */
  position: LogPosition | null;
  /** Gaps marked in `text`: [start, end) byte ranges of a generation's stream. */
  gaps: { generation: number; start: number; end: number }[];
  /** Set when stopAtGap stopped in front of a gap. */
  stoppedAtGap: boolean;
}

export function gapMarker(bytes: number): string {
  return `\n[deskpool: ${bytes} bytes of output missing here]\n`;
}

export function droppedMarker(bytes: number, capBytes: number): string {
  return `[deskpool: the first ${bytes} bytes of output were dropped; the newest ${capBytes} bytes per task are kept]\n`;
}

/**
 * Concatenates chunks (sorted by generation, then offset) from `from` on.
 *
 * Within a generation offsets are continuous: a chunk starting past the end of the previous one
 * leaves a gap (marked, never filled in), one starting before it overlaps and only its new bytes
 * count. A new generation (the task placed again) either continues the stream at the offset it
 * reached (an agent that kept counting) or starts a new console at offset 0 (a fresh QEMU on
 * another PC); any other start is a gap or an overlap as above.
 */
export function assemble(chunks: readonly OutputChunk[], from: LogPosition | null, options: AssembleOptions = {}): Assembled {
  const parts: Buffer[] = [];
  const gaps: Assembled['gaps'] = [];
  let position = from;
  for (const chunk of chunks) {
    const bytes = Buffer.from(chunk.data, 'utf8');
    const chunkEnd = chunk.offset + bytes.length;
    let expected: number;
    if (position === null) expected = chunk.offset; // the first chunk read starts the stream
    else if (chunk.generation < position.generation) continue;
    else if (chunk.generation === position.generation) expected = position.end;
    else expected = chunk.offset === 0 ? 0 : position.end;
    if (chunk.offset > expected) {
      if (options.stopAtGap) return { text: decode(parts), position, gaps, stoppedAtGap: true };
      parts.push(Buffer.from(gapMarker(chunk.offset - expected), 'utf8'));
      gaps.push({ generation: chunk.generation, start: expected, end: chunk.offset });
      expected = chunk.offset;
    }
    if (chunkEnd <= expected) {
      position = { generation: chunk.generation, end: expected };
      continue; // already shown
    }
    parts.push(bytes.subarray(expected - chunk.offset));
    position = { generation: chunk.generation, end: chunkEnd };
  }
  return { text: decode(parts), position, gaps, stoppedAtGap: false };
}

function decode(parts: Buffer[]): string {
  return Buffer.concat(parts).toString('utf8');
}
