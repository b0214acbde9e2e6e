// One timer wheel for the whole stack (TCP retransmission, delayed ACK,
// keep-alive, TIME_WAIT, ARP and reassembly expiry, conntrack expiry …).
//
// A hashed timing wheel (Varghese & Lauck) over intrusive doubly linked
// lists: a Timer is allocated once with its owner (e.g. one per connection
// per purpose) and re-armed forever after, so arming allocates nothing.
// Time is an input: advance(now) fires what is due; nextExpiry() tells the
// poll loop when to call again (smoltcp's poll_at). Milliseconds throughout.
//
// Contract: after advance(now) returns, every timer armed with at <= now
// before the call has fired exactly once (unless cancelled or re-armed by an
// earlier callback). A timer armed during advance() with at <= now fires on
// the next advance(), never recursively.

export class Timer {
  /** Expiry time in ms; meaningful while armed. */
  at = 0;
  /** Slot index while linked into the wheel, -1 idle, -2 collected for firing. */
  slot = -1;
  next: Timer | null = null;
  prev: Timer | null = null;
  constructor(readonly fire: (now: number) => void) {}
  get armed(): boolean { return this.slot !== -1; }
}

export interface TimerWheelOptions {
  /** Wheel granularity, ms. Default 1. */
  tickMs?: number;
  /** Slots, a power of two. Default 1024. */
  slots?: number;
  /** The time the wheel starts at, ms. Default 0. */
  start?: number;
}

export class TimerWheel {
  private readonly tickMs: number;
  private readonly mask: number;
  private readonly heads: (Timer | null)[];
  /** Ticks up to and including this one have been scanned. */
  private done: number;
  private count = 0;
  private readonly firing: Timer[] = [];
  private cachedNext = Infinity;
  private cacheValid = true;

  constructor(opts: TimerWheelOptions = {}) {
    this.tickMs = opts.tickMs ?? 1;
    const slots = opts.slots ?? 1024;
    if (slots < 2 || (slots & (slots - 1)) !== 0) throw new RangeError('slots must be a power of two');
    if (!(this.tickMs > 0)) throw new RangeError('tickMs must be > 0');
    this.mask = slots - 1;
    this.heads = new Array<Timer | null>(slots).fill(null);
    this.done = Math.floor((opts.start ?? 0) / this.tickMs) - 1;
  }

  /** Timers armed. */
  get size(): number { return this.count; }

  /** Arms t to fire at `at` (ms); re-arming an armed timer moves it. */
  arm(t: Timer, at: number): void {
    if (t.slot >= 0) {
      this.unlink(t);
      if (t.at <= this.cachedNext) this.cacheValid = false;
    } else if (t.slot === -1) this.count++;
    // A timer collected for firing (-2) is still counted; re-arming it takes it
    // out of the firing set (advance() skips it) and back into a slot.
    t.at = at;
    let tick = Math.floor(at / this.tickMs);
    if (tick <= this.done) tick = this.done + 1;
    const s = tick & this.mask;
    t.slot = s;
    t.prev = null;
    t.next = this.heads[s]!;
    if (t.next !== null) t.next.prev = t;
    this.heads[s] = t;
    if (this.cacheValid && at < this.cachedNext) this.cachedNext = at;
  }

  /** Disarms t; a no-op when it is not armed. */
  cancel(t: Timer): void {
    if (t.slot >= 0) {
      this.unlink(t);
      this.count--;
      if (t.at <= this.cachedNext) this.cacheValid = false;
    } else if (t.slot === -2) {
      this.count--;
    }
    t.slot = -1;
  }

  private unlink(t: Timer): void {
    if (t.prev !== null) t.prev.next = t.next;
    else this.heads[t.slot] = t.next;
    if (t.next !== null) t.next.prev = t.prev;
    t.next = t.prev = null;
  }

  /** Fires every timer due at or before now. Returns how many fired. */
  advance(now: number): number {
    const nowTick = Math.floor(now / this.tickMs);
    if (nowTick <= this.done && this.count === 0) return 0;
    const f = this.firing;
    f.length = 0;
    const first = this.done + 1;
    const span = Math.min(nowTick - first + 1, this.mask + 1);
    for (let k = 0; k < span; k++) {
      const s = (first + k) & this.mask;
      let t: Timer | null = this.heads[s]!;
      while (t !== null) {
        const nx: Timer | null = t.next;
        if (t.at <= now) {
          this.unlink(t);
          t.slot = -2;
          f.push(t);
        }
        t = nx;
      }
    }
    // When the clock jumped past a whole revolution, slots were scanned out of
    // time order: restore it so callbacks see a sane sequence.
    if (nowTick - first + 1 > this.mask + 1) f.sort((x, y) => x.at - y.at);
    // The current tick stays open: timers later in it are still to come.
    if (nowTick - 1 > this.done) this.done = nowTick - 1;
    this.cacheValid = false;
    let fired = 0;
    for (let i = 0; i < f.length; i++) {
      const t = f[i]!;
      if (t.slot !== -2) continue; // cancelled or re-armed by an earlier callback
      t.slot = -1;
      this.count--;
      fired++;
      t.fire(now);
    }
    f.length = 0;
    return fired;
  }

  /** The earliest expiry among armed timers, or undefined when none is armed. */
  nextExpiry(): number | undefined {
    if (this.count === 0) return undefined;
    if (this.cacheValid) return this.cachedNext === Infinity ? undefined : this.cachedNext;
    let best = Infinity;
    const slots = this.mask + 1;
    // Walk ticks in order; the first tick holding a timer due in that
    // revolution bounds the answer. Timers further than a revolution away need
    // a full scan, which only happens when nothing nearer exists.
    for (let k = 1; k <= slots && best === Infinity; k++) {
      const tick = this.done + k;
      let t: Timer | null = this.heads[tick & this.mask]!;
      while (t !== null) {
        if (Math.floor(t.at / this.tickMs) <= tick && t.at < best) best = t.at;
        t = t.next;
      }
    }
    if (best === Infinity) {
      for (let s = 0; s < slots; s++) for (let t: Timer | null = this.heads[s]!; t !== null; t = t.next) if (t.at < best) best = t.at;
    }
    this.cachedNext = best;
    this.cacheValid = true;
    return best === Infinity ? undefined : best;
  }
}
