// Errors that end the demo with a message saying what to start, not a stack trace (exit code 3).

export class ServicesUnavailable extends Error {
  constructor(what: string, cause: unknown, hint = 'Start PostgreSQL and Redis with `sudo bash scripts/services.sh` (or set DATABASE_URL / REDIS_URL).') {
    super(`${what} is not reachable (${cause instanceof Error ? cause.message : String(cause)}). ${hint}`, { cause });
    this.name = 'ServicesUnavailable';
  }
}

/** `demo --real` cannot run here: not root, no libvirtd, no test guest or no test host. */
export class RealOfficeUnavailable extends ServicesUnavailable {
  constructor(message: string, cause?: unknown) {
    super('libvirt', cause ?? message);
    this.message = `--real: ${message}`;
    this.name = 'RealOfficeUnavailable';
  }
}
