// Which trailer fields a proxy passes on (RFC 9110 §6.5, RFC 9112 §7.1.2).
//
// Trailers arrive after the content, so a recipient must not act on a field
// there that it needed before the content: RFC 9110 §6.5.1 forbids sending
// (and tells recipients not to merge) fields "necessary for message framing,
// routing, request modifiers, authentication, response control, or
// determining how to process the content". RFC 9110 names those families
// rather than listing fields; the list below is the fields of each family
// that RFC 9110, 9111 and 6265 define (the same set as Go's net/http and
// RFC 7230 §4.1.2 before it), plus the hop-by-hop fields of §7.6.1 and any
// field the message's Connection header names, which concern this hop only.
// A proxy drops them rather than failing the message: the content is whole,
// only the misplaced metadata goes.
import { isToken } from '../server/message.js';
import { connectionOptions } from './headers.js';

/** Lowercase names never forwarded as trailers. */
export const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set([
  // framing (RFC 9112 §6, RFC 9110 §8.6) — our parser already rejects CL and TE here
  'content-length', 'transfer-encoding', 'trailer',
  // hop-by-hop (RFC 9110 §7.6.1)
  'connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade',
  // routing (RFC 9110 §7.2, §7.6.2)
  'host', 'max-forwards',
  // request modifiers: controls and conditionals (RFC 9110 §10.1, §13.1, §14.2; RFC 9111 §5.2, §5.4)
  'expect', 'cache-control', 'pragma', 'range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'if-range',
  // authentication (RFC 9110 §11; RFC 6265 cookies)
  'authorization', 'proxy-authorization', 'www-authenticate', 'proxy-authenticate', 'authentication-info', 'proxy-authentication-info', 'cookie', 'set-cookie',
  // response control (RFC 9110 §10.2, RFC 9111 §5)
  'age', 'expires', 'date', 'location', 'retry-after', 'vary', 'warning',
  // how to process the content (RFC 9110 §8.3–8.4, §14.4)
  'content-type', 'content-encoding', 'content-range',
]);

/**
 * The trailer fields a proxy forwards, flat [name, value, …] like our parser
 * reports them. `headers` is the same message's header section (for its
 * Connection options). Names that are not tokens, or values with CR, LF or
 * NUL, cannot have come from our parser and are dropped rather than trusted.
 */
export function forwardTrailers(trailers: readonly string[] | null, headers: readonly string[]): string[] {
  const out: string[] = [];
  if (trailers === null || trailers.length === 0) return out;
  const conn = connectionOptions(headers);
  for (let i = 0; i + 1 < trailers.length; i += 2) {
    const n = trailers[i]!, v = trailers[i + 1]!;
    const l = n.toLowerCase();
    if (FORBIDDEN_TRAILERS.has(l) || (conn !== null && conn.includes(l))) continue;
    if (!isToken(n) || /[\r\n\0]/.test(v)) continue;
    out.push(n, v);
  }
  return out;
}

/** Field lines for a last chunk ("" for none). */
export function trailerLines(flat: readonly string[]): string {
  let s = '';
  for (let i = 0; i + 1 < flat.length; i += 2) s += `${flat[i]!}: ${flat[i + 1]!}\r\n`;
  return s;
}

/**
 * The Trailer field (RFC 9110 §6.6.2) announcing the forwardable trailers of
 * a message, or null: the announcement is filtered like the trailers
 * themselves, so it never names a field we would drop.
 */
export function forwardTrailerAnnouncement(headers: readonly string[]): string | null {
  const conn = connectionOptions(headers);
  let names: string[] | null = null;
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'trailer') continue;
    for (const t of headers[i + 1]!.split(',')) {
      const x = t.trim();
      const l = x.toLowerCase();
      if (x && isToken(x) && !FORBIDDEN_TRAILERS.has(l) && !(conn !== null && conn.includes(l))) (names ??= []).push(x);
    }
  }
  return names === null ? null : names.join(', ');
}
