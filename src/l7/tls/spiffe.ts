// SPIFFE IDs, parsed and checked per the SPIFFE-ID specification
// (github.com/spiffe/spiffe standards/SPIFFE-ID.md):
//
//   spiffe://<trust-domain><path>
//
// - the scheme is exactly "spiffe" (lower case) followed by "://";
// - the trust domain is 1..255 characters of [a-z0-9.-_]: no upper case, no
//   port, no userinfo, no percent-encoding;
// - the path is empty or a sequence of "/segment", each segment non-empty,
//   not "." or "..", of characters [A-Za-z0-9.-_]; no trailing slash;
// - no query and no fragment; the whole ID is at most 2048 bytes.
//
// The character sets reject '?', '#', ':', '@' and '%' by construction, so
// there is no separate check for query, fragment, port or userinfo.
import { SpiffeIdError } from './errors.js';

export interface SpiffeId {
  /** The canonical string, e.g. spiffe://example.org/ns/default/sa/client */
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** "" for a trust domain ID, else "/seg/seg…" */
  readonly path: string;
}

const SCHEME = 'spiffe://';
const MAX_ID_LENGTH = 2048;
const MAX_TRUST_DOMAIN_LENGTH = 255;

function isTrustDomainChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f;
}
function isPathChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f;
}

/** Why `td` is not a valid trust domain name, or null if it is. */
export function trustDomainError(td: string): string | null {
  if (td.length === 0) return 'trust domain is missing';
  if (td.length > MAX_TRUST_DOMAIN_LENGTH) return `trust domain longer than ${MAX_TRUST_DOMAIN_LENGTH} characters`;
  for (let i = 0; i < td.length; i++) {
    const c = td.charCodeAt(i);
    if (!isTrustDomainChar(c)) {
      if (c >= 0x41 && c <= 0x5a) return 'trust domain must be lower case';
      if (c === 0x3a) return 'trust domain must not contain a port';
      if (c === 0x40) return 'trust domain must not contain userinfo';
      return `trust domain contains invalid character ${JSON.stringify(td[i])}`;
    }
  }
  return null;
}

/** Why `path` is not a valid SPIFFE ID path ("" is valid), or null if it is. */
export function pathError(path: string): string | null {
  if (path.length === 0) return null;
  if (path.charCodeAt(0) !== 0x2f) return 'path must start with "/"';
  let segStart = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i === path.length || path.charCodeAt(i) === 0x2f) {
      const seg = path.slice(segStart, i);
      if (seg.length === 0) return i === path.length ? 'path must not end with "/"' : 'path must not contain empty segments';
      if (seg === '.' || seg === '..') return 'path must not contain "." or ".." segments';
      segStart = i + 1;
      continue;
    }
    const c = path.charCodeAt(i);
    if (!isPathChar(c)) {
      if (c === 0x3f) return 'SPIFFE ID must not contain a query';
      if (c === 0x23) return 'SPIFFE ID must not contain a fragment';
      if (c === 0x25) return 'path must not contain percent-encoded characters';
      return `path contains invalid character ${JSON.stringify(path[i])}`;
    }
  }
  return null;
}

/** Parses and validates a SPIFFE ID; throws SpiffeIdError with the reason. */
export function parseSpiffeId(id: string): SpiffeId {
  if (typeof id !== 'string' || id.length === 0) throw new SpiffeIdError(String(id), 'empty');
  if (Buffer.byteLength(id, 'utf8') > MAX_ID_LENGTH) throw new SpiffeIdError(id, `longer than ${MAX_ID_LENGTH} bytes`);
  if (!id.startsWith(SCHEME)) {
    if (id.toLowerCase().startsWith(SCHEME)) throw new SpiffeIdError(id, 'scheme must be lower-case "spiffe"');
    throw new SpiffeIdError(id, 'scheme must be "spiffe://"');
  }
  const rest = id.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const tdErr = trustDomainError(trustDomain);
  if (tdErr) throw new SpiffeIdError(id, tdErr);
  const pErr = pathError(path);
  if (pErr) throw new SpiffeIdError(id, pErr);
  return { spiffeId: id, trustDomain, path };
}

/** parseSpiffeId without throwing: the ID, or null. */
export function tryParseSpiffeId(id: string): SpiffeId | null {
  try { return parseSpiffeId(id); } catch { return null; }
}

/** The trust domain ID (spiffe://td) of a trust domain name; throws if the name is invalid. */
export function trustDomainId(trustDomain: string): string {
  const err = trustDomainError(trustDomain);
  if (err) throw new SpiffeIdError(`${SCHEME}${trustDomain}`, err);
  return `${SCHEME}${trustDomain}`;
}
