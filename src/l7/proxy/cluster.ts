// An upstream cluster: its hosts, the load balancer over the healthy ones,
// outlier detection, circuit breakers, the retry policy and one connection
// pool per host, all over one L7 transport. Defaults are Envoy's.
import type { Clock } from '../../util/clock.js';
import { turnClock } from '../../util/clock.js';
import { Prng } from '../../util/prng.js';
import { InvalidArgumentError } from '../../util/errors.js';
import type { L7Socket, L7Transport } from '../transport/types.js';
import { Host, HostSet } from './hosts.js';
import { createLoadBalancer, type LbOptions, type LbPolicy, type LoadBalancer } from './lb.js';
import { OutlierDetector, type OutlierOptions } from './outlier.js';
import { CircuitBreakers, type CircuitBreakerOptions, type RetryBudgetOptions } from './breakers.js';
import { HostPool } from './upstream.js';

export interface RetryPolicy {
  connectFailure: boolean;
  /** Retry when a reused connection is reset before any response byte. */
  reset: boolean;
  /** Default 502, 503, 504 (Envoy's gateway-error). */
  statusCodes: number[];
  /** Retries after the first try (Envoy default 1). */
  numRetries: number;
  /** 0: only the route's request timeout applies. */
  perTryTimeoutMs: number;
  backoff: { baseMs: number; maxMs: number };
}

export const RETRY_DEFAULTS: RetryPolicy = {
  connectFailure: true, reset: true, statusCodes: [502, 503, 504], numRetries: 1, perTryTimeoutMs: 0, backoff: { baseMs: 25, maxMs: 250 },
};

export type HashPolicy = { header: string } | { sourceIp: true };

export interface ClusterOptions {
  name: string;
  endpoints: { address: string; port: number; weight?: number }[];
  transport: L7Transport;
  lbPolicy?: LbPolicy;
  hashPolicy?: HashPolicy[];
  lb?: LbOptions;
  connectTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** null disables the budget (max_retries applies instead). Default Envoy-like 20% / 3. */
  retryBudget?: RetryBudgetOptions | null;
  outlier?: (OutlierOptions & { enabled?: boolean }) | null;
  circuitBreakers?: Omit<CircuitBreakerOptions, 'retryBudget'>;
  maxIdlePerEndpoint?: number;
  /** Pooled connections idle longer than this are not reused (default 60 000 ms; 0: no limit). */
  idleTimeoutMs?: number;
  /** Upstream TLS: wraps each new connection. */
  wrap?: ((s: L7Socket) => Promise<L7Socket>) | null;
  clock?: Clock;
  rng?: Prng;
}

export class Cluster {
  readonly name: string;
  readonly hosts: Host[];
  readonly set: HostSet;
  readonly lb: LoadBalancer;
  readonly outlier: OutlierDetector | null;
  readonly breakers: CircuitBreakers;
  readonly retry: RetryPolicy;
  readonly hashPolicy: HashPolicy[];
  readonly clock: Clock;
  readonly rng: Prng;
  readonly transport: L7Transport;
  private readonly pools = new Map<Host, HostPool>();

  constructor(opts: ClusterOptions) {
    if (opts.endpoints.length === 0) throw new InvalidArgumentError(`cluster ${opts.name}: no endpoints`);
    this.name = opts.name;
    this.clock = opts.clock ?? turnClock;
    this.rng = opts.rng ?? new Prng((Math.random() * 2 ** 32) >>> 0);
    this.transport = opts.transport;
    this.hosts = opts.endpoints.map((e) => new Host(e.address, e.port, e.weight ?? 1));
    this.set = new HostSet(this.hosts);
    this.lb = createLoadBalancer(opts.lbPolicy ?? 'ROUND_ROBIN', this.set, this.rng, opts.lb);
    const od = opts.outlier;
    this.outlier = od === null || od?.enabled === false ? null : new OutlierDetector(this.set, this.clock.now(), od ?? {});
    this.breakers = new CircuitBreakers({ ...(opts.circuitBreakers ?? {}), retryBudget: opts.retryBudget === undefined ? {} : opts.retryBudget });
    this.retry = { ...RETRY_DEFAULTS, ...(opts.retry ?? {}), backoff: { ...RETRY_DEFAULTS.backoff, ...(opts.retry?.backoff ?? {}) } };
    this.hashPolicy = opts.hashPolicy ?? [];
    for (const h of this.hosts) {
      this.pools.set(h, new HostPool(h, this.transport, this.breakers, {
        maxIdle: opts.maxIdlePerEndpoint ?? 64,
        connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
        idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
        wrap: opts.wrap ?? null,
        clock: this.clock,
      }));
    }
  }

  pool(h: Host): HostPool { return this.pools.get(h)!; }

  /** The hash key for hash policies: the first header present, or the client address. */
  hashKey(header: (lname: string) => string | undefined, clientAddr: string): string | null {
    for (const p of this.hashPolicy) {
      if ('header' in p) { const v = header(p.header.toLowerCase()); if (v !== undefined) return v; }
      else return clientAddr;
    }
    return null;
  }

  /** Picks a host (after running outlier sweeps due by now). */
  pick(key: string | null, now: number): Host | null {
    this.outlier?.poll(now);
    return this.lb.pick(key);
  }

  /** Records a try's outcome: an HTTP status, or 0 for connect failure/reset/timeout. */
  report(h: Host, status: number, now: number): void {
    this.outlier?.report(h, status, now);
  }

  close(): void { for (const p of this.pools.values()) p.close(); }
}
