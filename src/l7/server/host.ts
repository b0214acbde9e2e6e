// The Host rules a server enforces before a request reaches its handler
// (RFC 9112 §3.2): an HTTP/1.1 request without Host, any request with more
// than one Host field line, and any Host with an invalid value get 400.
// HTTP/1.0 without Host stays allowed. Whatever reaches the handler (and so
// the proxy's canonical authority) has at most one Host, and exactly one in
// HTTP/1.1.
//
// A valid value (RFC 9110 §7.2: Host = uri-host [ ":" port ]) is empty
// (allowed when the target URI has no authority, RFC 9112 §3.2), or, by
// RFC 3986 §3.2.2–3.2.3:
//   - an IP-literal: "[" unreserved / sub-delims / ":" "]" (IPv6 and
//     IPvFuture; the address itself is the router's business);
//   - a reg-name or IPv4address: unreserved / pct-encoded / sub-delims;
//   - then optionally ":" and a port of at most 5 digits, at most 65535.
// Stricter than RFC 3986, on purpose: no comma (an intermediary that joins
// repeated Host lines writes "a, b", so a comma is a list smuggled into one
// line, and no DNS name has one), and the port is a real port. Whitespace,
// "@" (userinfo), "/", "?", "#", controls and non-ASCII are never valid.

/** Why a request's Host is refused: the failure code counted in ServerStats.parseErrors. */
export const HostIssue = {
  MISSING: 'HOST_MISSING',
  REPEATED: 'HOST_REPEATED',
  INVALID: 'HOST_INVALID',
} as const;
export type HostIssue = (typeof HostIssue)[keyof typeof HostIssue];

/** reg-name characters: unreserved and sub-delims without ","; '%' is checked apart (pct-encoded). */
const REG = new Uint8Array(128);
for (let c = 0x30; c <= 0x39; c++) REG[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) REG[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) REG[c] = 1;
for (const c of "-._~!$&'()*+;=") REG[c.charCodeAt(0)] = 1;
/** Inside "[ ]": the same plus ":" (and '%' for a zone, pct-encoded). */
const LIT = REG.slice();
LIT[0x3a] = 1;

function hex(c: number): boolean { return (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66); }

/** Whether v is a valid Host field value (see the top of this file). No allocation. */
export function isValidHost(v: string): boolean {
  const n = v.length;
  let i = 0;
  if (n > 0 && v.charCodeAt(0) === 0x5b) { // "[" IP-literal "]"
    i = 1;
    while (i < n && v.charCodeAt(i) !== 0x5d) {
      const c = v.charCodeAt(i);
      if (c === 0x25) { if (i + 2 >= n || !hex(v.charCodeAt(i + 1)) || !hex(v.charCodeAt(i + 2))) return false; i += 3; continue; }
      if (c >= 128 || LIT[c] === 0) return false;
      i++;
    }
    if (i === n || i === 1) return false; // no "]", or nothing inside
    i++;
  } else {
    while (i < n) {
      const c = v.charCodeAt(i);
      if (c === 0x3a) break;
      if (c === 0x25) { if (i + 2 >= n || !hex(v.charCodeAt(i + 1)) || !hex(v.charCodeAt(i + 2))) return false; i += 3; continue; }
      if (c >= 128 || REG[c] === 0) return false;
      i++;
    }
  }
  if (i === n) return true;
  if (v.charCodeAt(i) !== 0x3a) return false;
  // port = *DIGIT (RFC 3986 §3.2.3; empty allowed), at most 65535 here.
  const digits = n - i - 1;
  if (digits > 5) return false;
  let port = 0;
  for (let j = i + 1; j < n; j++) {
    const c = v.charCodeAt(j) - 0x30;
    if (c < 0 || c > 9) return false;
    port = port * 10 + c;
  }
  return port <= 65535;
}
