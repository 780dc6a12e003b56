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
