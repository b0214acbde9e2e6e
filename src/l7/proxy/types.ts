// Route and cluster descriptions the proxy consumes. Field names follow the
// Gateway API HTTPRoute (gateway.networking.k8s.io/v1) and Envoy's cluster
// settings, so a config loader maps onto them one to one. Durations are ms.

export type PathMatchType = 'Exact' | 'PathPrefix' | 'RegularExpression';
export type ValueMatchType = 'Exact' | 'RegularExpression';

export interface HTTPPathMatch { type?: PathMatchType; value?: string }
export interface HTTPHeaderMatch { type?: ValueMatchType; name: string; value: string }
export interface HTTPQueryParamMatch { type?: ValueMatchType; name: string; value: string }

export interface HTTPRouteMatch {
  path?: HTTPPathMatch;
  headers?: HTTPHeaderMatch[];
  queryParams?: HTTPQueryParamMatch[];
  method?: string;
}

export interface HTTPHeader { name: string; value: string }
export interface HTTPHeaderFilter { set?: HTTPHeader[]; add?: HTTPHeader[]; remove?: string[] }

export type HTTPPathModifier =
  | { type: 'ReplaceFullPath'; replaceFullPath: string }
  | { type: 'ReplacePrefixMatch'; replacePrefixMatch: string };

export interface HTTPRequestRedirectFilter {
  scheme?: 'http' | 'https';
  hostname?: string;
  path?: HTTPPathModifier;
  port?: number;
  statusCode?: 301 | 302 | 303 | 307 | 308;
}

export interface HTTPURLRewriteFilter { hostname?: string; path?: HTTPPathModifier }

/** Filters on a backendRef apply only when that backend is chosen (header modifiers). */
export interface BackendRef { name: string; port?: number; weight?: number; filters?: HTTPRouteFilter[] }

export interface HTTPRequestMirrorFilter { backendRef: BackendRef; percent?: number }

export type HTTPRouteFilter =
  | { type: 'RequestHeaderModifier'; requestHeaderModifier: HTTPHeaderFilter }
  | { type: 'ResponseHeaderModifier'; responseHeaderModifier: HTTPHeaderFilter }
  | { type: 'RequestRedirect'; requestRedirect: HTTPRequestRedirectFilter }
  | { type: 'URLRewrite'; urlRewrite: HTTPURLRewriteFilter }
  | { type: 'RequestMirror'; requestMirror: HTTPRequestMirrorFilter };

export interface HTTPRouteTimeouts {
  /** Whole request including retries (Gateway API `request`); default 15 000. */
  request?: number;
  /** One upstream try (Gateway API `backendRequest`, Envoy per_try_timeout). */
  backendRequest?: number;
}

export interface HTTPRouteRetry {
  /** Retries after the first try (Envoy num_retries, default 1). */
  attempts?: number;
  /** Status codes that are retried (default 502, 503, 504). */
  codes?: number[];
  /** Retry when the connection cannot be made (default true). */
  connectFailure?: boolean;
}

export interface HTTPRouteRule {
  name?: string;
  matches?: HTTPRouteMatch[];
  filters?: HTTPRouteFilter[];
  backendRefs?: BackendRef[];
  timeouts?: HTTPRouteTimeouts;
  retry?: HTTPRouteRetry;
}

export interface HTTPRoute {
  name: string;
  namespace?: string;
  /** Creation order (e.g. position in the config file or a timestamp): older wins ties. */
  creationTimestamp?: number;
  hostnames?: string[];
  rules: HTTPRouteRule[];
}
