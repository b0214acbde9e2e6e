// Time is an input. Components that need "now" are handed a Clock; the stack
// itself takes `now` as an argument. Milliseconds, as a float.

export interface Clock { now(): number }

/** A clock that only moves when told to: deterministic tests and simulations. */
export class VirtualClock implements Clock {
  private t: number;
  constructor(start = 0) { this.t = start; }
  now(): number { return this.t; }
  advance(ms: number): number { if (ms < 0) throw new RangeError('time cannot go backwards'); this.t += ms; return this.t; }
  set(t: number): void { if (t < this.t) throw new RangeError('time cannot go backwards'); this.t = t; }
}

/** Monotonic wall clock in milliseconds (performance.now()). The only place strata reads real time. */
export const monotonicClock: Clock = { now: () => performance.now() };

/**
 * Monotonic time read at most once per macrotask: the first now() of a task
 * reads performance.now() and every later one in the same task gets that
 * value, until a microtask clears it (Envoy's dispatcher keeps the same kind of
 * approximate time, refreshed once per loop iteration). One burst of packets
 * on the stack is one task, so an L7 request's timers (idle, header, request
 * deadline, per-try, pool idle) cost one clock read per burst, not several
 * per request. For timeouts only: a task's later reads lag by as long as the
 * task has run so far (a burst: well under a millisecond); durations that are
 * reported (flow timings) read monotonicClock.
 */
class TurnClock implements Clock {
  private t = -1;
  private readonly clear = (): void => { this.t = -1; };
  now(): number {
    if (this.t < 0) { this.t = performance.now(); queueMicrotask(this.clear); }
    return this.t;
  }
}

/** The shared once-per-task clock (see TurnClock). */
export const turnClock: Clock = new TurnClock();

const TIME_ORIGIN = performance.timeOrigin;
/** Wall-clock time read once per task (turnClock's reading since the epoch): for the Date header, which changes once a second. */
export const turnWallClock: Clock = { now: () => TIME_ORIGIN + turnClock.now() };

/** Wall-clock time in milliseconds since the epoch, for timestamps in captures and logs. */
export const wallClock: Clock = { now: () => performance.timeOrigin + performance.now() };
