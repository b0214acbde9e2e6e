// The proxy's header rules, each written once (RFC 9110 §7.6, RFC 7239):
//
//   HOP_BY_HOP         the fields that concern one connection only (§7.6.1),
//                      plus those the proxy re-frames or answers itself;
//   connectionNames()  the field names a Connection (or Proxy-Connection)
//                      value lists: the only Connection token parser;
//   forwardedFor()     this hop's X-Forwarded-For address and its RFC 7239
//                      Forwarded element: the only place either is built.
//
// Two shapes use them. The fast paths work on lists our parser produced
// (names already lowercase, values validated) and build the result in one
// pass: forwardRequestHeaders() for the upstream request, and
// forwardResponseHeaders() for the client's response. The general path works
// on any list (names in any case, e.g. after a header filter) by editing it:
// stripHopByHop() then addForwardingHeaders(). For the same input both give
// the same output (test/proxy-headers.test.ts drives random lists through
// both).
import { headerRemove, type HeaderList } from './filters.js';

/** Hop-by-hop fields (RFC 9110 §7.6.1) plus those the proxy re-frames or handles itself. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'expect']);

/** Whether a (lowercase or any-case) name is Connection or Proxy-Connection, whose values list hop-by-hop names. */
export function isConnectionField(n: string): boolean {
  if (n === 'connection' || n === 'proxy-connection') return true;
  if (n.length !== 10 && n.length !== 16) return false;
  const c0 = n.charCodeAt(0) | 0x20; // 'c' or 'p' in either case before any new string
  return (c0 === 0x63 || c0 === 0x70) && (n.toLowerCase() === 'connection' || n.toLowerCase() === 'proxy-connection');
}

/**
 * The field names a Connection header value lists (RFC 9110 §7.6.1),
 * lowercased and appended to `into`; names already in HOP_BY_HOP are left out
 * (they go anyway). "keep-alive" and "close", by far the usual values, name
 * nothing more and cost no allocation.
 */
export function connectionNames(v: string, into: string[] | null): string[] | null {
  if (v.length === 10 || v.length === 5) {
    const l = v.toLowerCase();
    if (l === 'keep-alive' || l === 'close') return into;
  }
  for (const t of v.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && !HOP_BY_HOP.has(n)) (into ??= []).push(n);
  }
  return into;
}

/** Every name the Connection fields of h declare hop-by-hop (beyond HOP_BY_HOP), or null. */
export function connectionOptions(h: readonly string[]): string[] | null {
  let named: string[] | null = null;
  for (let i = 0; i < h.length; i += 2) if (isConnectionField(h[i]!)) named = connectionNames(h[i + 1]!, named);
  return named;
}

/** Whether a lowercase name is dropped on forwarding, given the Connection options `named`. */
function dropped(l: string, named: string[] | null): boolean {
  return HOP_BY_HOP.has(l) || (named !== null && named.includes(l));
}

/** General path: removes hop-by-hop fields, including those the Connection header names, from any list. */
export function stripHopByHop(h: HeaderList): void {
  const named = connectionOptions(h);
  let w = 0;
  for (let r = 0; r < h.length; r += 2) {
    if (dropped(h[r]!.toLowerCase(), named)) continue;
    if (w !== r) { h[w] = h[r]!; h[w + 1] = h[r + 1]!; }
    w += 2;
  }
  h.length = w;
}

/**
 * This hop's X-Forwarded-For address and RFC 7239 element, remembered per
 * client address (the same string for every request of a connection, so its
 * hash is cached) with the scheme and host it was built for: a proxy sees few
 * of each, and no key is built per request.
 */
export interface ForwardedFor { readonly ip: string; readonly el: string; readonly proto: string; readonly host: string }
/** Clients remembered by forwardedFor(); beyond it the cache starts again (many distinct clients just recompute). */
export const FORWARDED_CACHE_MAX = 4096;
const forwardedCache = new Map<string, ForwardedFor>();
export function forwardedFor(client: string, proto: string, host: string): ForwardedFor {
  let f = forwardedCache.get(client);
  if (f === undefined || f.proto !== proto || f.host !== host) {
    const mapped = client.startsWith('::ffff:') && client.includes('.');
    const ip = mapped ? client.slice(7) : client;
    // RFC 7239 §6: an IPv6 node is bracketed and quoted; ports are not known here.
    const node = mapped ? ip : client.includes(':') ? `"[${client}]"` : client;
    f = { ip, el: `for=${node};proto=${proto}${host ? `;host=${forwardedValue(host)}` : ''}`, proto, host };
    if (forwardedCache.size >= FORWARDED_CACHE_MAX) forwardedCache.clear();
    forwardedCache.set(client, f);
  }
  return f;
}

/** RFC 7239 §4 value: a token as it is, anything else a quoted-string. */
function forwardedValue(v: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/** Every value of a field joined with ", " (RFC 9110 §5.3), or undefined. */
function joined(h: readonly string[], lname: string): string | undefined {
  let v: string | undefined;
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i]!;
    if (n === lname || (n.length === lname.length && n.toLowerCase() === lname)) v = v === undefined ? h[i + 1]! : `${v}, ${h[i + 1]!}`;
  }
  return v;
}

/**
 * General path: replaces Host, and X-Forwarded-For / -Proto and Forwarded
 * with the received values extended by this hop, appended in that order with
 * lowercase names (what the fast path sends).
 */
export function addForwardingHeaders(h: HeaderList, client: string, proto: string, host: string, origHost: string): void {
  const f = forwardedFor(client, proto, origHost);
  const xff = joined(h, 'x-forwarded-for'), fwd = joined(h, 'forwarded');
  for (const n of ['host', 'x-forwarded-for', 'x-forwarded-proto', 'forwarded']) headerRemove(h, n);
  h.push('host', host, 'x-forwarded-for', xff !== undefined ? `${xff}, ${f.ip}` : f.ip, 'x-forwarded-proto', proto, 'forwarded', fwd !== undefined ? `${fwd}, ${f.el}` : f.el);
}

/**
 * Fast path: the upstream request's header list in one pass, the same as
 * stripHopByHop() then addForwardingHeaders() on a copy. Names are lowercase
 * on the wire, as Envoy sends them; a name a filter added keeps its case.
 */
export function forwardRequestHeaders(src: HeaderList, host: string, client: string, proto: string, origHost: string): HeaderList {
  const named = connectionOptions(src);
  const out: HeaderList = [];
  let xff: string | undefined, fwd: string | undefined;
  for (let i = 0; i < src.length; i += 2) {
    const n = src[i]!;
    if (HOP_BY_HOP.has(n)) continue;
    const l = n.toLowerCase(); // our parser's names are lowercase already: the same string then
    if (dropped(l, named)) continue;
    if (l === 'x-forwarded-for') { xff = xff === undefined ? src[i + 1] : `${xff}, ${src[i + 1]!}`; continue; }
    if (l === 'forwarded') { fwd = fwd === undefined ? src[i + 1] : `${fwd}, ${src[i + 1]!}`; continue; }
    if (l === 'host' || l === 'x-forwarded-proto') continue;
    out.push(n, src[i + 1]!);
  }
  const f = forwardedFor(client, proto, origHost);
  out.push('host', host, 'x-forwarded-for', xff !== undefined ? `${xff}, ${f.ip}` : f.ip, 'x-forwarded-proto', proto, 'forwarded', fwd !== undefined ? `${fwd}, ${f.el}` : f.el);
  return out;
}

/** Where forwardResponseHeaders() puts the fields it keeps (the client's ServerResponse). */
export interface HeaderSink { _addTrusted(name: string, value: string): void }

/**
 * Fast path for a response our parser read (lowercase names): hands the
 * end-to-end fields to `sink` in order, the same fields stripHopByHop()
 * keeps (Content-Length among the dropped: the caller re-announces it).
 */
export function forwardResponseHeaders(raw: readonly string[], sink: HeaderSink): void {
  const named = connectionOptions(raw);
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!;
    if (!dropped(n, named)) sink._addTrusted(n, raw[i + 1]!);
  }
}
