// How a batch guest reports its end on the serial console (guest/build.sh): one line
// "DESKPOOL-RESULT exit=<rc> <result>". Older guests and the simulated hypervisor print only
// "DESKPOOL-GUEST DONE rc=<rc>" and, for count-to, "RESULT <result>": those are read too.
import { MAX_TASK_RESULT_CHARS } from '@deskpool/protocol';

export interface GuestOutcome {
  exitCode: number | null;
  result?: string;
}

const lastMatch = (text: string, re: RegExp): RegExpExecArray | undefined => {
  let last: RegExpExecArray | undefined;
  for (const m of text.matchAll(re)) last = m as RegExpExecArray;
  return last;
};

/** The outcome the guest printed at the end of its console log; exitCode null when it printed none. */
export function parseGuestOutcome(consoleTail: string): GuestOutcome {
  const marker = lastMatch(consoleTail, /^DESKPOOL-RESULT exit=(\d{1,10})(?: (.*?))?\r?$/gm);
  if (marker) return withResult(Number(marker[1]), marker[2]);
  const done = lastMatch(consoleTail, /^DESKPOOL-GUEST DONE rc=(\d{1,10})\r?$/gm);
  if (!done) return { exitCode: null };
  return withResult(Number(done[1]), lastMatch(consoleTail, /^RESULT (.*?)\r?$/gm)?.[1]);
}

function withResult(exitCode: number, result: string | undefined): GuestOutcome {
  const code = exitCode <= 2147483647 ? exitCode : null;
  const trimmed = result?.trim();
  return trimmed ? { exitCode: code, result: trimmed.slice(0, MAX_TASK_RESULT_CHARS) } : { exitCode: code };
}
