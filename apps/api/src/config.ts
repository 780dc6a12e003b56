import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const urlWithScheme = (schemes: string[]) =>
  z
    .string({ error: 'is required' })
    .min(1, 'is required')
    .refine((v) => {
      try {
        return schemes.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    }, `must be a URL starting with ${schemes.map((s) => `${s}//`).join(' or ')}`);

const positiveInt = (fallback: number) =>
  z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(1_000_000, 'must be at most 1000000').default(fallback);

export const envSchema = z
  .object({
    DATABASE_URL: urlWithScheme(['postgresql:', 'postgres:']),
    REDIS_URL: urlWithScheme(['redis:', 'rediss:']),
    PORT: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be 1..65535').max(65535, 'must be 1..65535').default(8080),
    HOST: z.string().min(1).default('0.0.0.0'),
    LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
    DESKPOOL_BOOTSTRAP_ADMIN_TOKEN: z.string().min(32, 'must be at least 32 characters (use e.g. `openssl rand -base64 32`)').optional(),
    TLS_CERT_FILE: z.string().min(1).optional(),
    TLS_KEY_FILE: z.string().min(1).optional(),
    TRUST_PROXY: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false').transform((v) => v === 'true'),
    RATE_LIMIT_WINDOW_SECONDS: positiveInt(60),
    RATE_LIMIT_ENROLL_MAX: positiveInt(10),
    RATE_LIMIT_AGENT_CONNECT_MAX: positiveInt(60),
    RATE_LIMIT_FAILED_AUTH_MAX: positiveInt(20),
    /** memory: per process (one API process); redis: shared by every API process behind a load balancer. */
    RATE_LIMIT_STORE: z.enum(['memory', 'redis'], { error: 'must be memory or redis' }).default('memory'),
  });
export type ApiEnv = z.infer<typeof envSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads the API's environment; every bad value is reported by name, all at once. */
export function parseEnv(env: NodeJS.ProcessEnv): ApiEnv {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));
  const result = envSchema.safeParse(cleaned);
  const problems = result.success ? [] : result.error.issues.map((i) => `${i.path.join('.') || '(env)'} ${i.message}`);
  // Checked apart from the schema so it is reported together with every other problem.
  if ((cleaned.TLS_CERT_FILE === undefined) !== (cleaned.TLS_KEY_FILE === undefined)) {
    problems.push(`${cleaned.TLS_CERT_FILE === undefined ? 'TLS_CERT_FILE' : 'TLS_KEY_FILE'} is missing: TLS_CERT_FILE and TLS_KEY_FILE go together`);
  }
  if (!result.success || problems.length > 0) throw new ConfigError(problems);
  return result.data;
}
