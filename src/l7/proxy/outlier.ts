// Passive health checking: Envoy's outlier detection, consecutive-5xx flavour.
//
// Every upstream result is reported with the time it happened. A host that
// returns `consecutive5xx` 5xx responses in a row (connect failures and
// resets count as 5xx, Envoy's behaviour when local-origin errors are not
// split out) is ejected at once, unless that would eject more than
// maxEjectionPercent of the cluster — though, as in Envoy, at least one host
// may always be ejected. An ejected host stays out for
// baseEjectionTime × (times ejected), capped at maxEjectionTime, and comes
// back on the first interval sweep after that. Each sweep also lowers the
// ejection multiplier of hosts that stayed healthy through the interval.
// Time is an input: poll(now) runs the sweeps that are due.
import type { Host, HostSet } from './hosts.js';

export interface OutlierOptions {
  consecutive5xx?: number;      // default 5
  intervalMs?: number;          // default 10 000
  baseEjectionTimeMs?: number;  // default 30 000
  maxEjectionPercent?: number;  // default 10
  maxEjectionTimeMs?: number;   // default 300 000
}

export const OUTLIER_DEFAULTS: Required<OutlierOptions> = {
  consecutive5xx: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionPercent: 10,
  maxEjectionTimeMs: 300_000,
};

export interface OutlierEvent { kind: 'eject' | 'uneject'; host: Host; now: number }

export class OutlierDetector {
  readonly opts: Required<OutlierOptions>;
  private nextSweep: number;
  /** Ejections refused because of maxEjectionPercent. */
  overflowed = 0;
  /** Called on every ejection and return; for logs and metrics. */
  onEvent: ((e: OutlierEvent) => void) | null = null;

  constructor(private readonly set: HostSet, start: number, opts: OutlierOptions = {}) {
    this.opts = { ...OUTLIER_DEFAULTS, ...opts };
    this.nextSweep = start + this.opts.intervalMs;
  }

  /** The time poll() next has work: the next interval sweep. */
  pollAt(): number { return this.nextSweep; }

  /** Reports an HTTP status from host, or 0 for a connect failure, reset or timeout. */
  report(host: Host, status: number, now: number): void {
    if (status !== 0 && status < 500) { host.consecutive5xx = 0; return; }
    host.failures++;
    if (++host.consecutive5xx < this.opts.consecutive5xx || host.ejected) return;
    const n = this.set.hosts.length;
    const allowed = Math.max(1, Math.floor((n * this.opts.maxEjectionPercent) / 100));
    if (this.set.ejectedCount >= allowed) { this.overflowed++; return; }
    host.ejected = true;
    host.ejectedAt = now;
    host.ejections++;
    host.consecutive5xx = 0;
    this.set.refresh();
    this.onEvent?.({ kind: 'eject', host, now });
  }

  /** How long host stays ejected this time. */
  ejectionTime(host: Host): number {
    return Math.min(this.opts.baseEjectionTimeMs * Math.max(1, host.ejections), Math.max(this.opts.maxEjectionTimeMs, this.opts.baseEjectionTimeMs));
  }

  /** Runs every interval sweep due at or before now. */
  poll(now: number): void {
    while (now >= this.nextSweep) {
      const t = this.nextSweep;
      let changed = false;
      for (const h of this.set.hosts) {
        if (h.ejected) {
          if (t >= h.ejectedAt + this.ejectionTime(h)) {
            h.ejected = false;
            h.consecutive5xx = 0;
            changed = true;
            this.onEvent?.({ kind: 'uneject', host: h, now: t });
          }
        } else if (h.ejections > 0 && t - h.ejectedAt >= this.opts.intervalMs) {
          h.ejections--;
        }
      }
      if (changed) this.set.refresh();
      this.nextSweep += this.opts.intervalMs;
    }
  }
}
