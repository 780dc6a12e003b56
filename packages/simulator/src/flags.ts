/**
 * `--name value`, `--name=value` and bare switches → raw option values (validated by the
 * caller's zod schema); unknown flags and missing values are collected as problems, not thrown.
 * DATABASE_URL and REDIS_URL from the environment come first, so a flag overrides them.
 */
export function readFlags(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  flagNames: Record<string, string>,
  switches: Record<string, [key: string, value: unknown]>,
): { values: Record<string, unknown>; problems: string[] } {
  const values: Record<string, unknown> = {};
  if (env.DATABASE_URL) values.databaseUrl = env.DATABASE_URL;
  if (env.REDIS_URL) values.redisUrl = env.REDIS_URL;
  const problems: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const isSwitch = switches[arg];
    if (isSwitch) {
      values[isSwitch[0]] = isSwitch[1];
      continue;
    }
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const key = flagNames[flag];
    if (!key) {
      problems.push(`${arg}: unknown flag (known: ${[...Object.keys(flagNames), ...Object.keys(switches)].join(', ')})`);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) problems.push(`${flag}: needs a value`);
    else values[key] = value;
  }
  return { values, problems };
}
