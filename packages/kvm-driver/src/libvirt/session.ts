// One long-lived `virsh` shell per driver: short commands (state reads, pause, hot-plug) go
// through its already-open libvirt connection instead of a new process and connection each,
// which is what keeps the driver's overhead over raw virsh small. Commands are serialised;
// long jobs (save, restore, migrate) never go through here.
import { randomBytes } from 'node:crypto';
import type { CommandResult, CommandRunner, InteractiveProcess } from '../driver.js';

/** Arguments virsh's shell tokenizer passes through unchanged (no quoting needed). */
const SAFE_ARG = /^[A-Za-z0-9_./:=+,@%-]+$/;

export class SessionUnavailable extends Error {}

const beginMarker = (endMarker: string): string => endMarker.replace(/e__$/, 'b__');
const errMarker = (endMarker: string): string => endMarker.replace(/e__$/, 'm__');

interface Pending {
  line: string;
  sentinel: string;
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class VirshSession {
  private proc: InteractiveProcess | undefined;
  private out = '';
  private err = '';
  private current: Pending | undefined;
  private queue: (() => void)[] = [];
  private deadUntil = 0;
  private seq = 0;
  private readonly tag = randomBytes(4).toString('hex');
  private idleTimer: NodeJS.Timeout | undefined;
  /** An unused session is closed after this long (it reopens on the next call). */
  static idleMs = 30_000;

  constructor(
    private readonly runner: CommandRunner,
    private readonly uri: string,
  ) {}

  static accepts(args: readonly string[]): boolean {
    return args.every((a) => SAFE_ARG.test(a));
  }

  get usable(): boolean {
    return this.runner.interactive !== undefined && Date.now() >= this.deadUntil;
  }

  /** Runs one command; rejects with SessionUnavailable when the session broke (caller falls back). */
  exec(args: readonly string[], timeoutMs: number): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      const go = (): void => {
        clearTimeout(this.idleTimer);
        let proc: InteractiveProcess;
        try {
          proc = this.ensure();
        } catch (e) {
          reject(e instanceof Error ? e : new SessionUnavailable(String(e)));
          this.next();
          return;
        }
        const n = ++this.seq;
        const sentinel = `__dp_${this.tag}_${n}e__`;
        const line = args.join(' ');
        const timer = setTimeout(() => this.fail(new SessionUnavailable(`virsh session did not answer within ${timeoutMs} ms`)), timeoutMs);
        this.current = { line, sentinel, resolve, reject, timer };
        // virsh's shell echoes each line it reads, mangling long ones (readline scrolling), so
        // the command's output is framed by two short echo markers instead.
        // An unknown command makes virsh write a line to stderr (no libvirt call): that line
        // closes the command's stderr, as the end marker's echo closes its stdout.
        proc.write(`echo ${beginMarker(sentinel)}\n${line}\n${errMarker(sentinel)}\necho ${sentinel}\n`);
      };
      if (this.current) this.queue.push(go);
      else go();
    });
  }

  /** Ends the shell; a command in flight fails with SessionUnavailable (its caller falls back). */
  close(): void {
    this.fail(new SessionUnavailable('virsh session closed'));
  }

  private ensure(): InteractiveProcess {
    if (this.proc) return this.proc;
    if (!this.runner.interactive) throw new SessionUnavailable('runner cannot run an interactive virsh');
    const proc = this.runner.interactive(['virsh', '-q', '-c', this.uri]);
    proc.onStdout((chunk) => this.onStdout(chunk));
    proc.onStderr((chunk) => {
      this.err += chunk;
      this.tryComplete();
    });
    proc.onExit(() => {
      if (this.proc !== proc) return; // closed on purpose, or already replaced
      this.proc = undefined;
      // Exits at once when libvirtd is down: do not try again for a moment.
      this.deadUntil = Date.now() + 1000;
      this.fail(new SessionUnavailable('virsh session ended'));
    });
    this.proc = proc;
    return proc;
  }

  private onStdout(chunk: string): void {
    this.out += chunk;
    this.tryComplete();
  }

  /** A command is complete once both its stdout end marker and its stderr marker arrived. */
  private tryComplete(): void {
    const cur = this.current;
    if (!cur) return;
    const end = `virsh # echo ${cur.sentinel}\n${cur.sentinel}`;
    const at = this.out.indexOf(end);
    const mark = errMarker(cur.sentinel);
    const errLine = `error: unknown command: '${mark}'`;
    const e = this.err.indexOf(errLine);
    if (at < 0 || e < 0) return;
    // Between the begin marker's output and the stderr marker's echo: the command's echoed
    // line (one line, possibly mangled), then its output.
    const begin = beginMarker(cur.sentinel);
    const b = this.out.indexOf(`echo ${begin}\n${begin}`);
    const lineEnd = b >= 0 ? this.out.indexOf('\n', b + 2 * begin.length + 6) : -1;
    const markEcho = lineEnd >= 0 ? this.out.indexOf(`virsh # ${mark}\n`, lineEnd) : -1;
    const stop = markEcho >= 0 && markEcho < at ? markEcho : at;
    const stdout = lineEnd >= 0 && lineEnd < stop ? this.out.slice(lineEnd + 1, stop) : '';
    this.out = this.out.slice(at + end.length);
    const stderr = this.err
      .slice(0, e)
      .split('\n')
      .filter((l) => !/Reconnected to the hypervisor/.test(l))
      .join('\n');
    const nl = this.err.indexOf('\n', e);
    this.err = nl >= 0 ? this.err.slice(nl + 1) : '';
    this.finish(cur, { code: /^error:/m.test(stderr) ? 1 : 0, stdout, stderr });
  }

  private finish(cur: Pending, r: CommandResult): void {
    if (process.env.DESKPOOL_VIRSH_DEBUG === '1') console.error(`[virsh-session] ${cur.line} -> ${r.code} ${JSON.stringify(r.stdout.slice(0, 80))} ${JSON.stringify(r.stderr)}`);
    clearTimeout(cur.timer);
    this.current = undefined;
    cur.resolve(r);
    this.next();
  }

  private fail(e: Error): void {
    const cur = this.current;
    const proc = this.proc;
    this.proc = undefined;
    this.out = '';
    this.err = '';
    proc?.kill();
    if (!cur) return;
    clearTimeout(cur.timer);
    this.current = undefined;
    cur.reject(e);
    this.next();
  }

  private next(): void {
    const go = this.queue.shift();
    if (go) return go();
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (!this.current) this.close();
    }, VirshSession.idleMs);
    this.idleTimer.unref();
  }
}
