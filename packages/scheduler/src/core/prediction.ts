import { instantAtLocalMinute, localTime, localWeekdayMinute } from './local-time.js';
import type { Millis, PoolPolicy, User } from './types.js';

const DAY_MS = 24 * 3600_000;
const WEEK_MS = 7 * DAY_MS;

/** Local arrival minutes on today's weekday in recent weeks; a week k back weighs 1/k. */
function sameWeekdaySamples(user: User, policy: PoolPolicy, now: Millis): { minute: number; weight: number }[] {
  const today = localWeekdayMinute(now, policy.timeZone);
  const samples: { minute: number; weight: number }[] = [];
  for (const at of user.arrivals) {
    if (at >= now) continue;
    const weeksAgo = Math.round((now - at) / WEEK_MS);
    if (weeksAgo < 1 || weeksAgo > policy.preStaging.historyWeeks) continue;
    // Cheap pre-filter before the time-zone lookup: the same weekday is a whole number of
    // weeks back, give or take the day (and a DST hour).
    const offWeek = Math.abs(now - at - weeksAgo * WEEK_MS);
    if (offWeek >= DAY_MS + 3600_000) continue;
    const lt = localWeekdayMinute(at, policy.timeZone);
    if (lt.weekday !== today.weekday) continue;
    samples.push({ minute: lt.minuteOfDay, weight: 1 / weeksAgo });
  }
  return samples;
}

/**
 * Predicted arrival today (epoch ms) from the same weekday in recent weeks: a weighted
 * median of the local arrival minute, where a week k back weighs 1/k. A median because one
 * late morning (a dentist visit) should not move the prediction much.
 */
export function predictArrival(user: User, policy: PoolPolicy, now: Millis): Millis | null {
  if (user.arrivals.length === 0) return null;
  const samples = sameWeekdaySamples(user, policy, now);
  if (samples.length === 0) return null;
  samples.sort((a, b) => a.minute - b.minute);
  const total = samples.reduce((s, x) => s + x.weight, 0);
  let acc = 0;
  let median = samples[samples.length - 1]?.minute ?? 0;
  for (const s of samples) {
    acc += s.weight;
    if (acc >= total / 2) {
      median = s.minute;
      break;
    }
  }
  return instantAtLocalMinute(now, policy.timeZone, median);
}

/**
 * When today's desktop should be ready by: the earliest of the recent same-weekday arrivals
 * (never later than the prediction). Arrivals spread by minutes around the median, and a
 * desktop staged a fixed lead before the median misses everyone who comes in earlier than
 * that: about one arrival in six in the simulated office (docs/simulator.md). Staging and the
 * morning drain aim at this instead; the cost is a few more minutes of a running desktop.
 */
export function readyByToday(user: User, policy: PoolPolicy, now: Millis): Millis | null {
  const predicted = predictArrival(user, policy, now);
  if (predicted === null) return null;
  const samples = sameWeekdaySamples(user, policy, now);
  const earliest = Math.min(...samples.map((s) => s.minute));
  return Math.min(predicted, instantAtLocalMinute(now, policy.timeZone, earliest));
}

/** Whether `user` already has an arrival recorded on the local day of `now`. */
export function arrivedToday(user: User, policy: PoolPolicy, now: Millis): boolean {
  const today = localTime(now, policy.timeZone).date;
  return user.arrivals.some((a) => a <= now && now - a < 36 * 3600_000 && localTime(a, policy.timeZone).date === today);
}
