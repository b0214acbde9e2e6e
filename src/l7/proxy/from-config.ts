// Builds the proxy's runtime objects from a validated config (src/config):
// Gateway API HTTPRoutes map one to one onto the router's routes (names get
// "namespace/name" identity, file order is creation order), clusters onto
// Cluster with Envoy's defaults as the config loader filled them in.
import type { ClusterConfig, HTTPRoute as CfgRoute, HTTPRouteFilter as CfgFilter, ProxyConfig } from '../../config/types.js';
import type { L7Socket, L7Transport, TransportKind } from '../transport/types.js';
import type { HTTPRoute, HTTPRouteFilter, HTTPPathModifier, HTTPRouteRule } from './types.js';
import { Cluster } from './cluster.js';
import type { LbPolicy } from './lb.js';
import type { Clock } from '../../util/clock.js';
import type { Prng } from '../../util/prng.js';

function pathMod(p: { type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; replaceFullPath?: string; replacePrefixMatch?: string } | null): HTTPPathModifier | undefined {
  if (p === null) return undefined;
  return p.type === 'ReplaceFullPath' ? { type: 'ReplaceFullPath', replaceFullPath: p.replaceFullPath ?? '/' } : { type: 'ReplacePrefixMatch', replacePrefixMatch: p.replacePrefixMatch ?? '/' };
}

function filter(f: CfgFilter): HTTPRouteFilter {
  switch (f.type) {
    case 'RequestHeaderModifier': return { type: f.type, requestHeaderModifier: f.requestHeaderModifier };
    case 'ResponseHeaderModifier': return { type: f.type, responseHeaderModifier: f.responseHeaderModifier };
    case 'RequestRedirect': {
      const r = f.requestRedirect;
      return { type: f.type, requestRedirect: { ...(r.scheme ? { scheme: r.scheme } : {}), ...(r.hostname ? { hostname: r.hostname } : {}), ...(r.port !== null ? { port: r.port } : {}), ...(r.path ? { path: pathMod(r.path)! } : {}), statusCode: r.statusCode } };
    }
    case 'URLRewrite': {
      const u = f.urlRewrite;
      return { type: f.type, urlRewrite: { ...(u.hostname ? { hostname: u.hostname } : {}), ...(u.path ? { path: pathMod(u.path)! } : {}) } };
    }
    case 'RequestMirror': return { type: f.type, requestMirror: { backendRef: { name: f.requestMirror.backendRef.name }, percent: f.requestMirror.percent } };
  }
}

/** The routes attached to listener `name` (a route without parentRefs attaches to every listener). */
export function routesFor(cfg: ProxyConfig, listener: string): HTTPRoute[] {
  const out: HTTPRoute[] = [];
  cfg.routes.forEach((r: CfgRoute, i) => {
    if (r.spec.parentRefs.length > 0 && !r.spec.parentRefs.some((p) => p.name === listener)) return;
    const rules: HTTPRouteRule[] = r.spec.rules.map((rule) => ({
      ...(rule.name !== null ? { name: rule.name } : {}),
      matches: rule.matches.map((m) => ({ path: m.path, headers: m.headers, queryParams: m.queryParams, ...(m.method !== null ? { method: m.method } : {}) })),
      filters: rule.filters.map(filter),
      backendRefs: rule.backendRefs.map((b) => ({ name: b.name, weight: b.weight, ...(b.port !== null ? { port: b.port } : {}), ...(b.filters.length > 0 ? { filters: b.filters.map(filter) } : {}) })),
      timeouts: { request: rule.timeouts.requestMs, ...(rule.timeouts.backendRequestMs > 0 ? { backendRequest: rule.timeouts.backendRequestMs } : {}) },
    }));
    out.push({ name: r.metadata.name, namespace: r.metadata.namespace, creationTimestamp: i, hostnames: r.spec.hostnames, rules });
  });
  return out;
}

const LB: Record<ClusterConfig['lbPolicy'], LbPolicy> = {
  round_robin: 'ROUND_ROBIN', least_request: 'LEAST_REQUEST', random: 'RANDOM', ring_hash: 'RING_HASH', maglev: 'MAGLEV',
};

export interface ClusterRuntime {
  transportFor(kind: TransportKind): Promise<L7Transport>;
  /** Upstream TLS wrapper for a tls entry name. */
  wrapFor?(tlsName: string, expectSpiffeId: string | null): (s: L7Socket) => Promise<L7Socket>;
  clock?: Clock;
  rng?: Prng;
}

export async function clusterFromConfig(c: ClusterConfig, rt: ClusterRuntime): Promise<Cluster> {
  return new Cluster({
    name: c.name,
    endpoints: c.endpoints,
    transport: await rt.transportFor(c.transport),
    lbPolicy: LB[c.lbPolicy],
    hashPolicy: c.hashPolicy,
    lb: { minRingSize: c.ringHash.minimumRingSize, maxRingSize: c.ringHash.maximumRingSize, maglevTableSize: c.maglev.tableSize },
    connectTimeoutMs: c.connectTimeoutMs,
    retry: {
      connectFailure: c.retryPolicy.retryOn.connectFailure,
      reset: c.retryPolicy.retryOn.reset,
      statusCodes: c.retryPolicy.retryOn.statusCodes,
      numRetries: c.retryPolicy.numRetries,
      perTryTimeoutMs: c.retryPolicy.perTryTimeoutMs,
      backoff: { baseMs: c.retryPolicy.backoff.baseIntervalMs, maxMs: c.retryPolicy.backoff.maxIntervalMs },
    },
    retryBudget: c.retryBudget,
    outlier: c.outlierDetection.enabled ? { consecutive5xx: c.outlierDetection.consecutive5xx, intervalMs: c.outlierDetection.intervalMs, baseEjectionTimeMs: c.outlierDetection.baseEjectionTimeMs, maxEjectionPercent: c.outlierDetection.maxEjectionPercent } : null,
    circuitBreakers: c.circuitBreakers,
    maxIdlePerEndpoint: c.keepAlive.maxIdlePerEndpoint,
    idleTimeoutMs: c.keepAlive.idleTimeoutMs,
    wrap: c.tls !== null && rt.wrapFor ? rt.wrapFor(c.tls, c.upstreamSpiffeId) : null,
    ...(rt.clock ? { clock: rt.clock } : {}),
    ...(rt.rng ? { rng: rt.rng } : {}),
  });
}
