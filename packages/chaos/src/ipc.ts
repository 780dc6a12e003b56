// Request/answer over a forked child's IPC channel (the office and the fleets).
import type { ChildProcess } from 'node:child_process';

let nextId = 1;

export class ChildGone extends Error {
  constructor(what: string) {
    super(`${what} exited before answering`);
    this.name = 'ChildGone';
  }
}

export function ask<T extends { id: number }>(child: ChildProcess, what: string, message: Record<string, unknown>, timeoutMs = 30_000): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (m: unknown): void => {
      if ((m as { id?: number }).id !== id) return;
      done();
      resolve(m as T);
    };
    const onExit = (): void => {
      done();
      reject(new ChildGone(what));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} did not answer ${String(message.type)} within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send({ ...message, id });
  });
}

/** Resolves on the child's first message with id 0 (its "ready"). */
export function ready(child: ChildProcess, what: string, timeoutMs = 120_000): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not get ready within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: unknown): void => {
      if ((m as { id?: number }).id !== 0) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve();
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (code ${code}) while starting; see its log`));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
