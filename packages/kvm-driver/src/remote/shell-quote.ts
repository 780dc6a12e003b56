// An SSH server runs a command line through the remote user's shell; we only ever want one
// argv, so every argument is single-quoted and nothing in it is interpreted.

/** POSIX single-quoting: 'it'\''s' — safe for any byte except NUL. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) throw new TypeError('an argument cannot contain a NUL byte');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One shell command line that runs exactly this argv (with a C locale, like the local runner). */
export function commandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('argv must name a program');
  return ['env', 'LC_ALL=C', 'LANG=C', ...argv].map(shellQuote).join(' ');
}

/** First stderr line of a command started with trackedCommandLine(). */
export const PID_MARKER = '@deskpool-pid ';

/**
 * Like commandLine(), but the remote shell first reports its PID on stderr and then execs the
 * program (same PID). sshd does not reliably pass signals to a command without a terminal, so
 * stopping a remote command means `kill <pid>` over another channel.
 */
export function trackedCommandLine(argv: readonly string[]): string {
  return ['sh', '-c', `printf '${PID_MARKER}%s\\n' $$ >&2; exec "$@"`, 'sh'].map(shellQuote).join(' ') + ' ' + commandLine(argv);
}

/** Splits the PID marker off the front of stderr; pid is undefined until the marker line is complete. */
export function splitPidMarker(stderr: string): { pid?: number; rest: string } {
  if (!stderr.startsWith(PID_MARKER)) return { rest: stderr };
  const nl = stderr.indexOf('\n');
  if (nl < 0) return { rest: '' };
  const pid = Number(stderr.slice(PID_MARKER.length, nl));
  return { ...(Number.isInteger(pid) && pid > 1 ? { pid } : {}), rest: stderr.slice(nl + 1) };
}
