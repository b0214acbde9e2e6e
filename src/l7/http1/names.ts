// Field-name interning and request-target forms: the two places where the
// server and proxy would otherwise build a string per header or re-parse the
// target.
//
// headerName() returns the same lowercase string object for every common
// field name (no allocation on the hot path) and builds a lowercase string
// only for names outside the table. requestTargetForm() classifies a
// request-target per RFC 9112 §3.2 so the server can answer 400 to a form the
// method does not allow.

import { Method } from './constants.js';

/** Common field names (RFC 9110, 9111, 6265, CORS, proxies, tracing), interned. */
const COMMON = [
  'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'access-control-allow-origin',
  'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-disposition', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-range', 'content-type', 'cookie', 'date',
  'etag', 'expect', 'expires', 'forwarded', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match',
  'if-range', 'if-unmodified-since', 'keep-alive', 'last-modified', 'link', 'location', 'max-forwards', 'origin',
  'pragma', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'range', 'referer', 'retry-after',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-accept', 'sec-websocket-protocol', 'server',
  'set-cookie', 'strict-transport-security', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary',
  'via', 'www-authenticate', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip',
  'x-request-id', 'traceparent', 'tracestate', 'alt-svc', 'priority',
] as const;

// Buckets by (length, first letter lowercased): a probe compares a handful of candidates at most.
const BUCKETS = new Map<number, { name: string; bytes: Uint8Array }[]>();
for (const name of COMMON) {
  const key = (name.length << 8) | name.charCodeAt(0);
  const list = BUCKETS.get(key) ?? [];
  list.push({ name, bytes: Uint8Array.from(name, (c) => c.charCodeAt(0)) });
  BUCKETS.set(key, list);
}

/**
 * The lowercase field name of b[s..e). Common names come back as interned
 * strings (identity-comparable, no allocation). Input must be a token, which
 * the parser guarantees for onHeader/onTrailer names.
 */
export function headerName(b: Uint8Array, s: number, e: number): string {
  const len = e - s;
  if (len > 0 && len < 256) {
    const list = BUCKETS.get((len << 8) | (b[s]! | 0x20));
    if (list !== undefined) {
      outer: for (let k = 0; k < list.length; k++) {
        const cand = list[k]!.bytes;
        // |0x20 folds ASCII letters; on token bytes it maps nothing else onto a letter or '-'.
        for (let i = 1; i < len; i++) if ((b[s + i]! | 0x20) !== cand[i]) continue outer;
        return list[k]!.name;
      }
    }
  }
  let out = '';
  for (let i = s; i < e; i++) {
    const c = b[i]!;
    out += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
  }
  return out;
}

/** RFC 9112 §3.2 request-target forms. */
export const TargetForm = { INVALID: -1, ORIGIN: 0, ABSOLUTE: 1, AUTHORITY: 2, ASTERISK: 3 } as const;
export type TargetForm = (typeof TargetForm)[keyof typeof TargetForm];

// RFC 3986 authority characters: unreserved / pct-encoded / sub-delims / ":" / "@" / "[" / "]".
const AUTHORITY = new Uint8Array(256);
for (const ch of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@[]") AUTHORITY[ch.charCodeAt(0)] = 1;

const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/**
 * Classifies b[s..e) for `method` (parser.method). CONNECT takes only
 * authority-form (host:port with a port, RFC 9110 §9.3.6); '*' is only for
 * OPTIONS; everything else is origin-form ('/'...) or absolute-form
 * (scheme "://" ..., RFC 3986 §3.1). Anything else is INVALID: answer 400.
 */
export function requestTargetForm(method: number, b: Uint8Array, s: number, e: number): TargetForm {
  if (e <= s) return TargetForm.INVALID;
  const c0 = b[s]!;
  if (method === Method.CONNECT) {
    // authority = host ":" port; no userinfo, path, query or fragment.
    let colon = -1;
    for (let i = s; i < e; i++) {
      const c = b[i]!;
      if (c === 0x40 || !AUTHORITY[c]) return TargetForm.INVALID; // no userinfo, path, query or fragment
      if (c === 0x3a) colon = i;
    }
    if (colon <= s || colon === e - 1) return TargetForm.INVALID;
    for (let i = colon + 1; i < e; i++) if (!isDigit(b[i]!)) return TargetForm.INVALID;
    return TargetForm.AUTHORITY;
  }
  if (c0 === 0x2f) return TargetForm.ORIGIN;
  if (c0 === 0x2a && e - s === 1) return method === Method.OPTIONS ? TargetForm.ASTERISK : TargetForm.INVALID;
  // absolute-form: scheme "://" ... . RFC 3986 lets a scheme hold digits, '+',
  // '-' and '.', but HTTP's are "http" and "https" (RFC 9110 §4.2); like llhttp
  // we take letters only, which keeps us in step with node:http's parser.
  if (!isAlpha(c0)) return TargetForm.INVALID;
  let i = s + 1;
  while (i < e && isAlpha(b[i]!)) i++;
  if (!(i + 2 < e && b[i] === 0x3a && b[i + 1] === 0x2f && b[i + 2] === 0x2f)) return TargetForm.INVALID;
  // The authority ends at "/", "?" or "#"; what is before must be authority characters.
  for (i += 3; i < e; i++) {
    const c = b[i]!;
    if (c === 0x2f || c === 0x3f || c === 0x23) break;
    if (!AUTHORITY[c]) return TargetForm.INVALID;
  }
  return TargetForm.ABSOLUTE;
}

// ---- field values and targets as strings, cached --------------------------
//
// A proxy or server sees the same short values over and over: Host, the
// origin's Server and Content-Type, "/" as the target, the same Date for a
// second. Converting each one is a call into C++ and a new string; comparing
// the bytes with the last ones seen in the same slot is cheaper and allocates
// nothing. A direct-mapped table (slot = a hash of length and three bytes) of
// VALUE_SLOTS entries, each keeping up to VALUE_MAX bytes in one slab; longer
// values, and misses, are converted as before (a miss also refills the slot).
// Strings are immutable, so handing one to many requests is safe.

const VALUE_SLOTS = 512;
const VALUE_MAX = 48;
const slab = new Uint8Array(VALUE_SLOTS * VALUE_MAX);
const slotLen = new Int32Array(VALUE_SLOTS).fill(-1);
const slotStr: string[] = new Array<string>(VALUE_SLOTS).fill('');

/** b[s..e) as a latin1 string (one char per byte), for any Uint8Array view. */
export function latin1Of(b: Uint8Array, s: number, e: number): string {
  if (Buffer.isBuffer(b)) return b.toString('latin1', s, e);
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1', s, e);
}

/** b[s..e) as a latin1 string (each byte one char, as node:http reads heads), from the cache when it holds the same bytes. */
export function latin1Cached(b: Uint8Array, s: number, e: number): string {
  const len = e - s;
  if (len <= 0) return '';
  if (len > VALUE_MAX) return latin1Of(b, s, e);
  const slot = ((len * 0x9e5) ^ (b[s]! << 3) ^ (b[e - 1]! << 1) ^ b[s + (len >>> 1)]!) & (VALUE_SLOTS - 1);
  const base = slot * VALUE_MAX;
  if (slotLen[slot] === len) {
    let i = 0;
    while (i < len && slab[base + i] === b[s + i]) i++;
    if (i === len) return slotStr[slot]!;
  }
  const str = latin1Of(b, s, e);
  for (let i = 0; i < len; i++) slab[base + i] = b[s + i]!;
  slotLen[slot] = len;
  slotStr[slot] = str;
  return str;
}
