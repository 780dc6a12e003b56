export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 60_000 };

/**
 * Delay before reconnect attempt `attempt` (0-based): "full jitter" exponential backoff, so a
 * thousand agents cut off by the same API restart do not all come back in the same instant.
 */
export function reconnectDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.floor(policy.initialMs / 2 + random() * (ceiling - policy.initialMs / 2));
}
