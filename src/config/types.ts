// The typed proxy configuration, with every default applied. This is what
// the rest of strata consumes; the YAML shape is the same with optional
// fields, and durations written as Gateway API durations ("10s", "1m30s",
// "250ms") appear here in milliseconds.
//
// Routes are Gateway API HTTPRoute objects (gateway.networking.k8s.io/v1),
// kept in their own shape so that a route can be copied from a cluster. The
// only reinterpretation: spec.parentRefs[].name names a listener of this
// file, and backendRefs[].name names a cluster of this file.
import type { PolicySpec } from '../l7/policy/types.js';

export type Transport = 'kernel' | 'tap' | 'afxdp';
/** A listener's transport: 'auto' (the default) picks AF_XDP, else TAP, else the kernel, at start and at each reload. */
export type ListenerTransport = Transport | 'auto';
export type LbPolicy = 'round_robin' | 'least_request' | 'random' | 'ring_hash' | 'maglev';

export interface ProxyConfig {
  /** absolute path of the file this came from */
  file: string;
  admin: AdminConfig | null;
  logging: LoggingConfig;
  listeners: ListenerConfig[];
  /** SIGTERM: how long in-flight requests may take before their connections are closed; SIGHUP: how long the old routes and clusters are kept for requests still using them. */
  drain: DrainConfig;
  tls: TlsConfig[];
  clusters: ClusterConfig[];
  routes: HTTPRoute[];
  policies: PolicySpec[];
}

export interface AdminConfig {
  address: string;
  port: number;
}

export interface DrainConfig {
  timeoutMs: number;
}

export interface LoggingConfig {
  level: 'debug' | 'info' | 'warn' | 'error';
  format: 'json' | 'text';
  /** Where the proxy's own log goes: 'stderr' (default), 'stdout' or a file path (appended). */
  path: string;
  accessLog: { enabled: boolean; path: string };
  /** Query strings in flow records and in the access/verdict log: hidden (values redacted, names kept) unless true. Default false. */
  showQueryStrings: boolean;
}

export interface ListenerConfig {
  name: string;
  address: string;
  port: number;
  transport: ListenerTransport;
  protocol: 'HTTP' | 'HTTPS';
  /** name of an entry in `tls`; required for HTTPS */
  tls: string | null;
  timeouts: { headerMs: number; idleMs: number; requestMs: number };
  maxHeaderBytes: number;
  maxConnections: number;
  /** Requests owed a response at which a connection stops reading (pipelining backpressure; default 16). */
  maxPipelined: number;
  /** Unsent response bytes above which a connection stops reading (default 64 KiB). */
  outputHighWaterMark: number;
  /** HTTP/1.1 Upgrade tunnelling (Envoy upgrade_configs): protocols that tunnel (lowercase), and the tunnel idle timeout (0: none). */
  upgrade: { types: string[]; idleTimeoutMs: number };
  /** %2F and %5C in request paths (Envoy path_with_escaped_slashes_action; default REJECT_REQUEST, src/l7/proxy/canonical.ts). */
  escapedSlashes: 'KEEP_UNCHANGED' | 'REJECT_REQUEST' | 'UNESCAPE_AND_REDIRECT' | 'UNESCAPE_AND_FORWARD';
}

export interface TlsConfig {
  name: string;
  /** absolute paths (relative ones are resolved against the config file's directory) */
  certFile: string;
  keyFile: string;
  caFile: string;
  requireClientCert: boolean;
  trustDomains: string[] | null;
  /** reload when the files change */
  watch: boolean;
}

export interface EndpointConfig {
  address: string;
  port: number;
  weight: number;
}

export interface RetryPolicyConfig {
  /** 'connect-failure' | 'reset' | 'gateway-error' (502, 503, 504) | '5xx', and status codes */
  retryOn: { connectFailure: boolean; reset: boolean; statusCodes: number[] };
  numRetries: number;
  /** 0: no per-try timeout beyond the route's request timeout */
  perTryTimeoutMs: number;
  backoff: { baseIntervalMs: number; maxIntervalMs: number };
}

export interface ClusterConfig {
  name: string;
  transport: Transport;
  endpoints: EndpointConfig[];
  lbPolicy: LbPolicy;
  /** ring_hash and maglev: what to hash; first that yields a value wins, else a random pick */
  hashPolicy: ({ header: string } | { sourceIp: true })[];
  ringHash: { minimumRingSize: number; maximumRingSize: number };
  maglev: { tableSize: number };
  connectTimeoutMs: number;
  /** upstream mTLS: name of an entry in `tls` */
  tls: string | null;
  /** with tls: the upstream's SPIFFE ID must equal this */
  upstreamSpiffeId: string | null;
  retryPolicy: RetryPolicyConfig;
  retryBudget: { budgetPercent: number; minRetryConcurrency: number } | null;
  outlierDetection: { enabled: boolean; consecutive5xx: number; intervalMs: number; baseEjectionTimeMs: number; maxEjectionPercent: number };
  circuitBreakers: { maxConnections: number; maxPendingRequests: number; maxRequests: number; maxRetries: number };
  keepAlive: { maxIdlePerEndpoint: number; idleTimeoutMs: number };
}

// ---- Gateway API HTTPRoute (v1), defaults applied ----

export interface HTTPRoute {
  apiVersion: 'gateway.networking.k8s.io/v1';
  kind: 'HTTPRoute';
  metadata: { name: string; namespace: string };
  spec: HTTPRouteSpec;
}

export interface ParentReference { name: string; port: number | null }

export interface HTTPRouteSpec {
  parentRefs: ParentReference[];
  hostnames: string[];
  rules: HTTPRouteRule[];
}

export type PathMatchType = 'Exact' | 'PathPrefix' | 'RegularExpression';
export type HTTPMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'CONNECT' | 'OPTIONS' | 'TRACE' | 'PATCH';

export interface HTTPRouteMatch {
  path: { type: PathMatchType; value: string };
  headers: { type: 'Exact' | 'RegularExpression'; name: string; value: string }[];
  queryParams: { type: 'Exact' | 'RegularExpression'; name: string; value: string }[];
  method: HTTPMethod | null;
}

export interface HTTPHeaderModifier {
  set: { name: string; value: string }[];
  add: { name: string; value: string }[];
  remove: string[];
}

export interface HTTPPathModifier {
  type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  replaceFullPath?: string;
  replacePrefixMatch?: string;
}

export type HTTPRouteFilter =
  | { type: 'RequestHeaderModifier'; requestHeaderModifier: HTTPHeaderModifier }
  | { type: 'ResponseHeaderModifier'; responseHeaderModifier: HTTPHeaderModifier }
  | { type: 'RequestRedirect'; requestRedirect: { scheme: 'http' | 'https' | null; hostname: string | null; path: HTTPPathModifier | null; port: number | null; statusCode: 301 | 302 | 303 | 307 | 308 } }
  | { type: 'URLRewrite'; urlRewrite: { hostname: string | null; path: HTTPPathModifier | null } }
  | { type: 'RequestMirror'; requestMirror: { backendRef: { name: string; port: number | null }; percent: number } };

export interface HTTPBackendRef {
  name: string;
  port: number | null;
  weight: number;
  filters: HTTPRouteFilter[];
}

export interface HTTPRouteRule {
  name: string | null;
  matches: HTTPRouteMatch[];
  filters: HTTPRouteFilter[];
  backendRefs: HTTPBackendRef[];
  /** request: whole request including retries (default 15 s, Envoy's route timeout); backendRequest: per try (0 = none) */
  timeouts: { requestMs: number; backendRequestMs: number };
}

export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** e.g. routes[0].spec.rules[1].matches[0].path.type */
  field: string;
  message: string;
}
