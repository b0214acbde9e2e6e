// Circuit breakers, the retry budget and retry backoff, after Envoy.
//
// Breakers bound what one cluster may hold at once: connections, requests
// waiting for a connection (pending), requests in flight and retries in
// flight; Envoy's defaults are 1024/1024/1024/3. A request that would
// overflow is not queued: the proxy answers 503 and counts the overflow.
//
// With a retry budget (Envoy's retry_budget: budget_percent 20,
// min_retry_concurrency 3) retries in flight may be at most
// max(min_retry_concurrency, budget_percent% of active + pending requests);
// the budget then replaces max_retries, as it does in Envoy.
//
// Backoff is Envoy's fully jittered exponential: before retry n (1-based) wait
// a uniform time in [0, min(base × (2^n − 1), max)); base 25 ms, max 250 ms.
import type { Prng } from '../../util/prng.js';

export interface CircuitBreakerOptions {
  maxConnections?: number;
  maxPendingRequests?: number;
  maxRequests?: number;
  maxRetries?: number;
  /** null disables the budget (then maxRetries applies). */
  retryBudget?: RetryBudgetOptions | null;
}

export interface RetryBudgetOptions { budgetPercent?: number; minRetryConcurrency?: number }

export const BREAKER_DEFAULTS = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 } as const;
export const RETRY_BUDGET_DEFAULTS = { budgetPercent: 20, minRetryConcurrency: 3 } as const;

export class CircuitBreakers {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  readonly budget: Required<RetryBudgetOptions> | null;
  connections = 0;
  pending = 0;
  requests = 0;
  retries = 0;
  /** Overflow counters, by breaker. */
  readonly overflow = { connections: 0, pending: 0, requests: 0, retries: 0 };

  constructor(opts: CircuitBreakerOptions = {}) {
    this.maxConnections = opts.maxConnections ?? BREAKER_DEFAULTS.maxConnections;
    this.maxPendingRequests = opts.maxPendingRequests ?? BREAKER_DEFAULTS.maxPendingRequests;
    this.maxRequests = opts.maxRequests ?? BREAKER_DEFAULTS.maxRequests;
    this.maxRetries = opts.maxRetries ?? BREAKER_DEFAULTS.maxRetries;
    this.budget = opts.retryBudget === null ? null : { ...RETRY_BUDGET_DEFAULTS, ...(opts.retryBudget ?? {}) };
  }

  /** Takes a request slot, or counts an overflow and returns false. */
  tryRequest(): boolean {
    if (this.requests >= this.maxRequests) { this.overflow.requests++; return false; }
    this.requests++;
    return true;
  }
  releaseRequest(): void { this.requests--; }

  tryPending(): boolean {
    if (this.pending >= this.maxPendingRequests) { this.overflow.pending++; return false; }
    this.pending++;
    return true;
  }
  releasePending(): void { this.pending--; }

  /** Whether a new upstream connection may be opened (callers count overflows by what they do instead). */
  canConnect(): boolean { return this.connections < this.maxConnections; }
  noteConnectionOverflow(): void { this.overflow.connections++; }
  connectionOpened(): void { this.connections++; }
  connectionClosed(): void { this.connections--; }

  /** The retries allowed in flight right now. */
  retryLimit(): number {
    if (this.budget === null) return this.maxRetries;
    return Math.max(this.budget.minRetryConcurrency, Math.floor(((this.requests + this.pending) * this.budget.budgetPercent) / 100));
  }

  /** Takes a retry slot, or counts an overflow and returns false. */
  tryRetry(): boolean {
    if (this.retries >= this.retryLimit()) { this.overflow.retries++; return false; }
    this.retries++;
    return true;
  }
  releaseRetry(): void { this.retries--; }
}

export const BACKOFF_DEFAULTS = { baseMs: 25, maxMs: 250 } as const;

/** Jittered exponential backoff before retry `n` (1-based). */
export function retryBackoff(n: number, rng: Prng, baseMs: number = BACKOFF_DEFAULTS.baseMs, maxMs: number = BACKOFF_DEFAULTS.maxMs): number {
  const ceiling = Math.min(baseMs * (2 ** Math.min(n, 30) - 1), maxMs);
  return rng.float() * ceiling;
}
