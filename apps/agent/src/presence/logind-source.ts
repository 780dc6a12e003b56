import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Clock, TimerHandle } from '../clock.js';
import type { PresenceInput, PresenceSink } from './source.js';

const run = promisify(execFile);

export interface LogindIdle {
  idle: boolean;
  /** Epoch ms, when logind knows it. */
  idleSince: number | null;
}

/** Parses `loginctl show-session ID -p IdleHint -p IdleSinceHint` output (IdleSinceHint is µs since the epoch). */
export function parseLogindIdle(text: string): LogindIdle {
  const props = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) props.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  const hint = props.get('IdleHint');
  if (hint !== 'yes' && hint !== 'no') throw new Error(`loginctl gave no IdleHint (got: ${text.trim().slice(0, 200) || 'nothing'})`);
  const sinceUs = Number(props.get('IdleSinceHint') ?? '0');
  return { idle: hint === 'yes', idleSince: Number.isFinite(sinceUs) && sinceUs > 0 ? Math.floor(sinceUs / 1000) : null };
}

/** Picks the graphical session on seat0 from `loginctl list-sessions --no-legend` (SESSION UID USER SEAT ...). */
export function pickSeatSession(text: string): string | null {
  for (const line of text.split('\n')) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 4 && cols[3] === 'seat0' && cols[0]) return cols[0];
  }
  return null;
}

/**
 * Fallback when input devices cannot be read (e.g. Wayland sessions with locked-down /dev/input):
 * the desktop's own idle notion via logind, polled.
 */
export class LogindSource implements PresenceInput {
  readonly kind = 'logind' as const;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private lastError: string | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly pollMs: number,
    private readonly sessionId?: string,
  ) {}

  async start(sink: PresenceSink): Promise<void> {
    await this.poll(sink);
  }

  private async poll(sink: PresenceSink): Promise<void> {
    if (this.stopped) return;
    try {
      const session = this.sessionId ?? pickSeatSession((await run('loginctl', ['list-sessions', '--no-legend'])).stdout);
      if (!session) throw new Error('no session on seat0');
      const { stdout } = await run('loginctl', ['show-session', session, '-p', 'IdleHint', '-p', 'IdleSinceHint']);
      const idle = parseLogindIdle(stdout);
      const now = this.clock.now();
      if (idle.idle) sink.idleHint(idle.idleSince ?? now, 'logind');
      else sink.activity(now, 'logind');
      this.lastError = undefined;
    } catch (err) {
      const message = `logind idle hint unavailable: ${(err as Error).message.split('\n')[0]}`;
      if (message !== this.lastError) sink.warn(message); // say it once, not every poll
      this.lastError = message;
    }
    if (!this.stopped) this.timer = this.clock.setTimeout(() => void this.poll(sink), this.pollMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
  }
}
