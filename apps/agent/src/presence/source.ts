import type { PresenceSource } from '@deskpool/protocol';

/** Where a presence source reports what it sees. */
export interface PresenceSink {
  activity(at: number, source: PresenceSource): void;
  /** The source only knows the person has been idle since `idleSince` (epoch ms). */
  idleHint(idleSince: number, source: PresenceSource): void;
  /** Something the operator should know (a device vanished, loginctl failed); never fatal. */
  warn(message: string): void;
}

export interface PresenceInput {
  readonly kind: PresenceSource;
  start(sink: PresenceSink): Promise<void>;
  stop(): Promise<void>;
}
