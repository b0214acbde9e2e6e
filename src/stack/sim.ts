// The deterministic simulation harness: two Stacks over a MemLink pair on a
// VirtualClock (smoltcp's netsim). Nothing reads real time: the harness
// polls both stacks at the virtual now, then jumps the clock to the next
// event - the earliest of both stacks' pollAt() and both links' next frame
// delivery - and repeats. Same seed, same run: any failure replays from it.
//
//   const sim = new Sim({ seed: 7, impair: { loss: 0.02 } });
//   sim.b.attach(myTransport);
//   sim.runUntil(() => done, 10_000);
import { MemLink, type Impairments } from '../link/mem.js';
import type { Link } from '../link/types.js';
import { VirtualClock } from '../util/clock.js';
import { StrataError } from '../util/errors.js';
import { Stack, type StackOptions } from './iface.js';

export interface SimOptions {
  /** Seeds the links' impairments and both stacks' PRNGs. Default 1. */
  seed?: number;
  impair?: Impairments;
  impairAtoB?: Impairments;
  impairBtoA?: Impairments;
  /** L2 MTU of the links (default 1514: IP MTU 1500). */
  linkMtu?: number;
  frameSize?: number;
  /** Frames of memory per link end. */
  frames?: number;
  /** Virtual start time, ms. */
  start?: number;
  /** Wraps a side's link before its stack uses it (pcap capture, tracing, recording). */
  wrap?: (link: MemLink, side: 'a' | 'b') => Link;
  /** Extra options for stack A (10.0.0.1/24) and B (10.0.0.2/24). */
  a?: Partial<StackOptions>;
  b?: Partial<StackOptions>;
}

export class SimStalledError extends StrataError {
  constructor(message: string) { super('ERR_STRATA_SIM_STALLED', message); }
}

export class Sim {
  readonly clock: VirtualClock;
  readonly linkA: MemLink;
  readonly linkB: MemLink;
  readonly a: Stack;
  readonly b: Stack;
  /** Polls made (both stacks count as one round). */
  rounds = 0;

  static readonly ADDR_A = '10.0.0.1';
  static readonly ADDR_B = '10.0.0.2';

  constructor(opts: SimOptions = {}) {
    const seed = opts.seed ?? 1;
    this.clock = new VirtualClock(opts.start ?? 0);
    [this.linkA, this.linkB] = MemLink.pair({
      seed, clock: this.clock, impair: opts.impair, impairAtoB: opts.impairAtoB, impairBtoA: opts.impairBtoA,
      mtu: opts.linkMtu, frameSize: opts.frameSize, frames: opts.frames, names: ['simA', 'simB'],
    });
    const la = opts.wrap ? opts.wrap(this.linkA, 'a') : this.linkA;
    const lb = opts.wrap ? opts.wrap(this.linkB, 'b') : this.linkB;
    this.a = new Stack({ addrs: [{ addr: Sim.ADDR_A, prefixLen: 24 }], seed: seed * 2 + 1, ...opts.a, link: la, clock: this.clock });
    this.b = new Stack({ addrs: [{ addr: Sim.ADDR_B, prefixLen: 24 }], seed: seed * 2 + 2, ...opts.b, link: lb, clock: this.clock });
  }

  get now(): number { return this.clock.now(); }

  /** Polls both stacks at the current time until neither has work due now. */
  pollNow(): void {
    for (let i = 0; i < 1000; i++) {
      const now = this.clock.now();
      this.a.poll(now);
      this.b.poll(now);
      this.rounds++;
      if (!this.busy(this.a, this.linkA) && !this.busy(this.b, this.linkB)) return;
    }
    throw new SimStalledError(`stacks still busy after 1000 polls at t=${this.clock.now()}`);
  }

  /** Frames waiting on a live stack's link, or work due now. */
  private busy(s: Stack, l: MemLink): boolean { return !s.isClosed && (l.pending() > 0 || this.dueNow(s)); }

  /** Work due now: frames to send, or a timer at or before now (armed during the last poll, it fires on the next). */
  private dueNow(s: Stack): boolean {
    const t = s.pollAt();
    return t !== undefined && t <= this.clock.now();
  }

  /** The next event time after now, or undefined when nothing is scheduled. */
  nextEvent(): number | undefined {
    let t = Infinity;
    for (const x of [this.a.pollAt(), this.b.pollAt(), this.a.isClosed ? undefined : this.linkA.nextDue(), this.b.isClosed ? undefined : this.linkB.nextDue()]) if (x !== undefined && x < t) t = x;
    return t === Infinity ? undefined : t;
  }

  /** Polls, then advances the clock to the next event (at most `until`). Returns false when idle. */
  step(until = Infinity): boolean {
    this.pollNow();
    const next = this.nextEvent();
    if (next === undefined) { if (until !== Infinity && until > this.clock.now()) this.clock.set(until); return false; }
    const target = Math.min(Math.max(next, this.clock.now()), until);
    if (target > this.clock.now()) this.clock.set(target);
    return true;
  }

  /** Runs for ms of virtual time. */
  run(ms: number): void {
    const end = this.clock.now() + ms;
    while (this.clock.now() < end) {
      if (!this.step(end)) break;
    }
    this.pollNow();
  }

  /** Runs until pred() holds (checked after every step) or maxMs of virtual time pass. Returns pred(). */
  runUntil(pred: () => boolean, maxMs = 60_000): boolean {
    const end = this.clock.now() + maxMs;
    this.pollNow();
    while (!pred() && this.clock.now() < end) {
      if (!this.step(end) && pred()) break;
    }
    return pred();
  }

  /** Closes both stacks and links. */
  close(): void {
    this.a.close(); this.b.close();
    this.linkA.close(); this.linkB.close();
  }
}
