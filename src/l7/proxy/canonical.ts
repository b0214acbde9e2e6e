// The canonical request: scheme, authority, host, port, path and query,
// computed once per request before anything decides on it. Policy, routing,
// URLRewrite / RequestRedirect, the access log, flow records and the upstream
// request all read this one view, so none can be shown one target while
// another acts on a different one (the absolute-form and dot-segment bypasses
// of issue 10).
//
// Request-target (RFC 9112 §3.2):
//   origin-form    "/" path ["?" query]; authority from the one Host field.
//   absolute-form  only the http and https schemes (case-insensitive, RFC
//                  9110 §4.2); the URI's authority replaces Host (RFC 9112
//                  §3.2.2) and the upstream gets origin-form. Any other scheme
//                  is 400. The connection's scheme (the listener's) stays the
//                  request's scheme: a client cannot claim https over plain
//                  text to the upstream's X-Forwarded-Proto.
//   asterisk-form  "*" for OPTIONS only (the parser enforces it): path "*".
//   authority-form CONNECT only; the server answers CONNECT 501 before the
//                  proxy (no CONNECT tunnels), so here it is 400.
// Host (RFC 9112 §3.2): two Host fields are 400; none is 400 in HTTP/1.1 and
// an empty authority in HTTP/1.0; an empty Host is 400 (an http URI always
// has a host, RFC 9110 §4.2.1). The authority is host [":" port]: a
// bracketed IPv6 literal or a reg-name of ALPHA DIGIT "-" "." "_" "~"
// (userinfo, percent-escapes and sub-delims are 400); the host is lowercased
// and loses a trailing dot, the port is 1-5 digits up to 65535, an empty port
// is dropped (RFC 3986 §6.2.3).
//
// Path, as Envoy normalises by default at the edge (normalize_path,
// merge_slashes, path_with_escaped_slashes_action):
//   1. percent-escapes of unreserved characters (ALPHA DIGIT "-" "." "_" "~",
//      RFC 3986 §2.3) are decoded, every other escape is kept with uppercase
//      hex (§6.2.2.1); a malformed escape is 400. %2F and %5C follow the
//      listener's EscapedSlashAction; a raw "\" becomes "/" (as Envoy's
//      normalize_path does).
//   2. dot-segments are removed (RFC 3986 §5.2.4).
//   3. runs of "/" are merged into one.
// Nothing else is decoded. The query is passed on as received (an empty
// one, "/a?", is dropped).
//
// Fast path: a path with no "%", "\", "/." or "//" is already canonical; one
// scan, and the strings the parser made are used as they are.
import type { RouteRequest } from './router.js';

/**
 * What to do with %2F and %5C in a path (Envoy's path_with_escaped_slashes_action):
 * KEEP_UNCHANGED forwards them as they are (hex uppercased); REJECT_REQUEST
 * answers 400; UNESCAPE_AND_REDIRECT answers 307 to the path with them
 * unescaped (and normalised); UNESCAPE_AND_FORWARD unescapes and forwards.
 */
export const ESCAPED_SLASH_ACTIONS = ['KEEP_UNCHANGED', 'REJECT_REQUEST', 'UNESCAPE_AND_REDIRECT', 'UNESCAPE_AND_FORWARD'] as const;
export type EscapedSlashAction = (typeof ESCAPED_SLASH_ACTIONS)[number];
/**
 * Default REJECT_REQUEST (Envoy's is KEEP_UNCHANGED): an upstream that
 * decodes %2F would see a different path than the policy and the routes
 * matched (/public/..%2Fadmin is /admin to it), and a 400 says so plainly
 * where a redirect would silently change what the client asked for.
 */
export const DEFAULT_ESCAPED_SLASH_ACTION: EscapedSlashAction = 'REJECT_REQUEST';

/** Why a request-target is refused (400); stable codes, counted by the proxy. */
export type TargetErrorCode = 'unsupported_scheme' | 'invalid_target' | 'invalid_authority' | 'missing_host' | 'duplicate_host' | 'invalid_escape' | 'escaped_slash';

/** What the canonical request is computed from (a ServerRequest). */
export interface TargetSource {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly rawHeaders: readonly string[];
  header(name: string): string | undefined;
}

/** One request's canonical view; also what the router matches (RouteRequest). */
export class CanonicalRequest implements RouteRequest {
  readonly method: string;
  /** The connection's scheme (the listener's), whatever an absolute-form said. */
  readonly scheme: 'http' | 'https';
  /** host [":" port] as forwarded in Host, or '' (HTTP/1.0 without Host). */
  authority = '';
  /** Lowercase, no port, no trailing dot, IPv6 brackets kept. */
  host = '';
  port: number | null = null;
  /** Normalised path, or "*" (asterisk-form). */
  path = '/';
  /** As received after "?", or ''. */
  query = '';
  /** Escaped slashes were unescaped under UNESCAPE_AND_REDIRECT: answer 307 to target. */
  redirect = false;
  /** Why the request is refused with 400, or null. */
  error: TargetErrorCode | null = null;
  /** @internal The upstream target once built (the received one when the path was canonical). */
  origin: string | null = null;

  constructor(readonly req: TargetSource, scheme: 'http' | 'https') {
    this.method = req.method;
    this.scheme = scheme;
  }

  /** Field values for route and policy matches; Host is the canonical authority. */
  header(name: string): string | undefined { return name === 'host' ? this.authority : this.req.header(name); }

  /** origin-form path ["?" query], what the upstream receives (the received string when nothing changed). */
  get target(): string {
    return this.origin ??= this.query.length > 0 ? `${this.path}?${this.query}` : this.path;
  }
}

const HTTP_SCHEME = /^https?$/i;

/** The canonical view of req, on a listener of `scheme`; check .error first. */
export function canonicalRequest(req: TargetSource, scheme: 'http' | 'https', escapedSlashes: EscapedSlashAction): CanonicalRequest {
  const c = new CanonicalRequest(req, scheme);
  const url = req.url;
  // Host fields: exactly one (any HTTP/1.1 request) or none (HTTP/1.0).
  let hostValue: string | undefined;
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (n === 'host' || (n.length === 4 && n.toLowerCase() === 'host')) { hosts++; hostValue = raw[i + 1]; }
  }
  if (hosts > 1) return fail(c, 'duplicate_host');
  if (hosts === 0 && req.httpVersion !== '1.0' && req.httpVersion !== '0.9') return fail(c, 'missing_host');
  let authority = hostValue ?? '';
  let rawPath: string;
  const c0 = url.charCodeAt(0);
  if (c0 === 47 /* / */) {
    const q = url.indexOf('?');
    rawPath = q < 0 ? url : url.slice(0, q);
    c.query = q < 0 ? '' : url.slice(q + 1);
  } else if (url === '*' && req.method === 'OPTIONS') {
    c.path = '*';
    return parseAuthority(c, authority, hosts === 0) ? c : fail(c, 'invalid_authority');
  } else {
    const sep = url.indexOf('://');
    if (sep <= 0) return fail(c, 'invalid_target');
    if (!HTTP_SCHEME.test(url.slice(0, sep))) return fail(c, /^[A-Za-z][A-Za-z0-9+.-]*$/.test(url.slice(0, sep)) ? 'unsupported_scheme' : 'invalid_target');
    let end = sep + 3;
    while (end < url.length) { const ch = url.charCodeAt(end); if (ch === 47 || ch === 63 || ch === 35) break; end++; }
    authority = url.slice(sep + 3, end);
    if (authority.length === 0) return fail(c, 'invalid_authority'); // RFC 9110 §4.2.1: an http(s) URI has a host
    const rest = url.slice(end);
    const q = rest.indexOf('?');
    rawPath = q < 0 ? rest : rest.slice(0, q);
    if (rawPath.length === 0) rawPath = '/';
    c.query = q < 0 ? '' : rest.slice(q + 1);
  }
  if (rawPath.charCodeAt(0) !== 47 || rawPath.includes('#') || c.query.includes('#')) return fail(c, 'invalid_target');
  if (!parseAuthority(c, authority, hosts === 0)) return fail(c, 'invalid_authority');
  const p = normalisePath(rawPath, escapedSlashes);
  if (p === null) return fail(c, pathError);
  c.path = p;
  // Nothing changed: the received target, no new string ("/a?" is "/a": an empty query is no query).
  if (p === rawPath && c0 === 47 && (c.query.length > 0 || url.length === rawPath.length)) c.origin = url;
  c.redirect = unescapedSlash && escapedSlashes === 'UNESCAPE_AND_REDIRECT';
  return c;
}

function fail(c: CanonicalRequest, code: TargetErrorCode): CanonicalRequest {
  c.error = code;
  return c;
}

// ---- authority ---------------------------------------------------------------

const REG_NAME = new Uint8Array(128);
for (const ch of 'abcdefghijklmnopqrstuvwxyz0123456789-._~') REG_NAME[ch.charCodeAt(0)] = 1;
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') REG_NAME[ch.charCodeAt(0)] = 2;
const IPV6 = new Uint8Array(128);
for (const ch of '0123456789abcdefABCDEF:.') IPV6[ch.charCodeAt(0)] = 1;

// The last authority parsed: a proxy sees the same Host (often the very same
// string, the parser interns short values) request after request.
let lastRaw = '', lastAuthority = '', lastHost = '';
let lastPort: number | null = null;

/**
 * Sets c.authority, c.host and c.port from a; false when a is not a valid
 * authority. Empty is valid only when there was no Host at all (HTTP/1.0): an
 * http(s) URI has a host (RFC 9110 §4.2.1), so an empty Host field is 400.
 */
function parseAuthority(c: CanonicalRequest, a: string, noHostField: boolean): boolean {
  if (a.length === 0) return noHostField;
  if (a === lastRaw) { c.authority = lastAuthority; c.host = lastHost; c.port = lastPort; return true; }
  let i = 0, upper = false;
  if (a.charCodeAt(0) === 91 /* [ */) {
    const close = a.indexOf(']');
    if (close < 3) return false;
    for (i = 1; i < close; i++) { const ch = a.charCodeAt(i); if (ch >= 128 || IPV6[ch] === 0) return false; if (ch >= 65 && ch <= 70) upper = true; }
    i = close + 1;
    if (i < a.length && a.charCodeAt(i) !== 58 /* : */) return false;
  } else {
    for (; i < a.length; i++) {
      const ch = a.charCodeAt(i);
      if (ch === 58) break;
      if (ch >= 128 || REG_NAME[ch] === 0) return false; // userinfo '@', escapes and sub-delims included
      if (REG_NAME[ch] === 2) upper = true;
    }
    if (i === 0) return false;
  }
  let host = a.slice(0, i);
  let changed = upper;
  if (upper) host = host.toLowerCase();
  if (host.length > 1 && host.charCodeAt(host.length - 1) === 46 /* . */ && host.charCodeAt(0) !== 91) { host = host.slice(0, -1); changed = true; }
  if (host === '.' || host.endsWith('.')) return false;
  let port: number | null = null;
  if (i < a.length) {
    const digits = a.length - i - 1;
    if (digits === 0) changed = true; // "host:" is "host" (RFC 3986 §6.2.3)
    else {
      if (digits > 5) return false;
      port = 0;
      for (let k = i + 1; k < a.length; k++) { const d = a.charCodeAt(k) - 48; if (d < 0 || d > 9) return false; port = port * 10 + d; }
      if (port > 65535) return false;
      if (a.charCodeAt(i + 1) === 48 && digits > 1) changed = true; // leading zeros
    }
  }
  c.host = lastHost = host;
  c.port = lastPort = port;
  c.authority = lastAuthority = !changed ? a : port === null ? host : `${host}:${port}`;
  lastRaw = a;
  return true;
}

// ---- path --------------------------------------------------------------------

/** Set by normalisePath(): why it returned null, and whether it unescaped a slash. */
let pathError: TargetErrorCode = 'invalid_escape';
let unescapedSlash = false;

const UNRESERVED = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[ch.charCodeAt(0)] = 1;
const HEX = '0123456789ABCDEF';

function hexVal(ch: number): number {
  if (ch >= 48 && ch <= 57) return ch - 48;
  if (ch >= 65 && ch <= 70) return ch - 55;
  if (ch >= 97 && ch <= 102) return ch - 87;
  return -1;
}

/**
 * The canonical form of an origin-form path (starting with "/"), or null
 * (see pathError). The path itself when it is canonical already.
 */
export function normalisePath(p: string, escapedSlashes: EscapedSlashAction): string | null {
  unescapedSlash = false;
  for (let i = 0; i < p.length; i++) {
    const ch = p.charCodeAt(i);
    if (ch === 37 /* % */ || ch === 92 /* \ */) return normaliseSlow(p, escapedSlashes);
    if (ch === 47) { const n = p.charCodeAt(i + 1); if (n === 47 || n === 46) return normaliseSlow(p, escapedSlashes); }
  }
  return p;
}

function normaliseSlow(p: string, action: EscapedSlashAction): string | null {
  // 1. escapes: unreserved decoded, %2F / %5C per action, the rest uppercased; "\" is "/".
  let s = '';
  for (let i = 0; i < p.length; i++) {
    const ch = p.charCodeAt(i);
    if (ch === 92) { s += '/'; continue; }
    if (ch !== 37) { s += p[i]!; continue; }
    const h = hexVal(p.charCodeAt(i + 1)), l = hexVal(p.charCodeAt(i + 2));
    if (h < 0 || l < 0) { pathError = 'invalid_escape'; return null; }
    const b = h * 16 + l;
    i += 2;
    if (b < 128 && UNRESERVED[b] === 1) { s += String.fromCharCode(b); continue; }
    if (b === 0x2f || b === 0x5c) {
      if (action === 'REJECT_REQUEST') { pathError = 'escaped_slash'; return null; }
      if (action !== 'KEEP_UNCHANGED') { s += '/'; unescapedSlash = true; continue; }
    }
    s += `%${HEX[h]!}${HEX[l]!}`;
  }
  // 2. dot-segments (RFC 3986 §5.2.4), on segments: s starts with "/".
  const segs = s.split('/');
  const out: string[] = [];
  const last = segs.length - 1;
  for (let k = 1; k <= last; k++) {
    const seg = segs[k]!;
    if (seg === '.' || seg === '..') {
      if (seg === '..') out.pop();
      if (k === last) out.push(''); // "/a/b/.." is "/a/"
      continue;
    }
    out.push(seg);
  }
  // 3. merge slashes: empty segments go, except a trailing one.
  let r = '';
  for (let k = 0; k < out.length; k++) if (out[k]!.length > 0 || k === out.length - 1) r += `/${out[k]!}`;
  return r.length === 0 ? '/' : r;
}
