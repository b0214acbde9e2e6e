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

/** Wall-clock time in milliseconds since the epoch, for timestamps in captures and logs. */
export const wallClock: Clock = { now: () => performance.timeOrigin + performance.now() };
