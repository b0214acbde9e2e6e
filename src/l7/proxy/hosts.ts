// Upstream hosts of a cluster and the set the load balancer chooses from.
// Health here is outlier ejection (passive): a host that is ejected leaves the
// healthy set until the detector brings it back. Envoy's panic threshold
// (50%) applies: when fewer than half the hosts are healthy, balancing uses
// all of them rather than overloading the few that are left.

export class Host {
  /** Requests in flight to this host (least-request balancing). */
  active = 0;
  ejected = false;
  ejectedAt = 0;
  /** Times ejected, decremented while healthy (Envoy's ejection multiplier). */
  ejections = 0;
  consecutive5xx = 0;
  /** Counters for observability. */
  requests = 0;
  failures = 0;
  readonly id: string;
  constructor(readonly address: string, readonly port: number, readonly weight = 1) {
    this.id = `${address}:${port}`;
  }
}

export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

export class HostSet {
  readonly hosts: Host[];
  private healthy: Host[] = [];
  private chosen: Host[] = [];
  /** Bumped whenever the set to balance over changes; hash balancers rebuild on change. */
  version = 0;
  constructor(hosts: Host[], readonly panicThresholdPercent = DEFAULT_PANIC_THRESHOLD_PERCENT) {
    this.hosts = hosts;
    this.refresh();
  }

  /** Call after ejecting or un-ejecting hosts, or after changing `hosts`. */
  refresh(): void {
    this.healthy = this.hosts.filter((h) => !h.ejected);
    const panic = this.hosts.length > 0 && this.healthy.length * 100 < this.hosts.length * this.panicThresholdPercent;
    const next = panic || this.healthy.length === 0 ? this.hosts.slice() : this.healthy;
    if (next.length !== this.chosen.length || next.some((h, i) => h !== this.chosen[i])) {
      this.chosen = next;
      this.version++;
    }
  }

  /** The hosts balancing chooses among (healthy ones, or all in panic). */
  get available(): readonly Host[] { return this.chosen; }
  get healthyCount(): number { return this.healthy.length; }
  get ejectedCount(): number { return this.hosts.length - this.healthy.length; }

  add(h: Host): void { this.hosts.push(h); this.refresh(); }
  remove(h: Host): void { const i = this.hosts.indexOf(h); if (i >= 0) { this.hosts.splice(i, 1); this.refresh(); } }
}
