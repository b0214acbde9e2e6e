// The routing proxy: public surface.
export { Proxy, type ProxyOptions, type ProxyStats, type AccessLogEntry, type PolicyHook } from './proxy.js';
export { stripHopByHop, addForwardingHeaders, forwardRequestHeaders, forwardResponseHeaders, connectionNames, HOP_BY_HOP } from './headers.js';
export { canonicalRequest, normalisePath, CanonicalRequest, ESCAPED_SLASH_ACTIONS, DEFAULT_ESCAPED_SLASH_ACTION, type EscapedSlashAction, type TargetErrorCode } from './canonical.js';
export { Cluster, RETRY_DEFAULTS, type ClusterOptions, type RetryPolicy, type HashPolicy } from './cluster.js';
export { Router, splitTarget, normaliseHost, type RouteRequest, type RouteMatchResult } from './router.js';
export { applyHeaderFilter, modifyPath, redirectTarget, pickBackend, headerGet, headerSet, headerRemove, type HeaderList } from './filters.js';
export { Host, HostSet } from './hosts.js';
export { createLoadBalancer, LB_POLICIES, type LbPolicy, type LoadBalancer, type LbOptions } from './lb.js';
export { OutlierDetector, OUTLIER_DEFAULTS, type OutlierOptions } from './outlier.js';
export { CircuitBreakers, retryBackoff, BREAKER_DEFAULTS, RETRY_BUDGET_DEFAULTS } from './breakers.js';
export { HostPool, UpstreamConnection, UpstreamError, type UpstreamFailure } from './upstream.js';
export { routesFor, clusterFromConfig, type ClusterRuntime } from './from-config.js';
export type * from './types.js';
