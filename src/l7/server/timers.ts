// Drives one TimerWheel from the event loop with a single Node timer armed at
// the wheel's next expiry. Every connection owns one Timer that is re-armed
// (never reallocated) as it moves between header, request and idle phases,
// so a server with 10 000 connections holds one setTimeout, not 10 000, and
// a byte arriving costs nothing timer-wise.
import { TimerWheel, type Timer } from '../../stack/timers.js';
import type { Clock } from '../../util/clock.js';

export class TimerDriver {
  readonly wheel: TimerWheel;
  private handle: NodeJS.Timeout | null = null;
  private scheduledAt = Infinity;
  private readonly onTimeout = (): void => {
    this.handle = null;
    this.scheduledAt = Infinity;
    this.wheel.advance(this.clock.now());
    this.reschedule();
  };

  constructor(readonly clock: Clock, tickMs = 10) {
    this.wheel = new TimerWheel({ tickMs, slots: 1024, start: clock.now() });
  }

  now(): number { return this.clock.now(); }

  arm(t: Timer, at: number): void {
    this.wheel.arm(t, at);
    if (at < this.scheduledAt) this.reschedule();
  }

  cancel(t: Timer): void { this.wheel.cancel(t); }

  private reschedule(): void {
    const next = this.wheel.nextExpiry();
    if (next === undefined) {
      if (this.handle !== null) { clearTimeout(this.handle); this.handle = null; this.scheduledAt = Infinity; }
      return;
    }
    if (this.handle !== null && this.scheduledAt <= next) return;
    if (this.handle !== null) clearTimeout(this.handle);
    this.scheduledAt = next;
    this.handle = setTimeout(this.onTimeout, Math.max(0, Math.ceil(next - this.clock.now())));
    this.handle.unref();
  }

  stop(): void {
    if (this.handle !== null) clearTimeout(this.handle);
    this.handle = null;
    this.scheduledAt = Infinity;
  }
}
