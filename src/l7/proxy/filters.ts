// HTTPRoute filters (Gateway API v1): header modifiers, redirects, URL
// rewrites, and the weighted choice among backendRefs. Pure functions over a
// flat header list [name0, value0, name1, value1, …] that keeps the names'
// original case for the wire and compares them case-insensitively.
import type { BackendRef, HTTPHeaderFilter, HTTPPathModifier, HTTPRequestRedirectFilter } from './types.js';

export type HeaderList = string[];

export function headerGet(h: HeaderList, lname: string): string | undefined {
  for (let i = 0; i < h.length; i += 2) {
    const n = h[i]!;
    if (n === lname || (n.length === lname.length && n.toLowerCase() === lname)) return h[i + 1];
  }
  return undefined;
}

export function headerRemove(h: HeaderList, lname: string): void {
  let w = 0;
  for (let r = 0; r < h.length; r += 2) {
    const n = h[r]!;
    if (n === lname || (n.length === lname.length && n.toLowerCase() === lname)) continue;
    if (w !== r) { h[w] = h[r]!; h[w + 1] = h[r + 1]!; }
    w += 2;
  }
  h.length = w;
}

export function headerSet(h: HeaderList, name: string, value: string): void {
  headerRemove(h, name.toLowerCase());
  h.push(name, value);
}

/**
 * RequestHeaderModifier / ResponseHeaderModifier: `set` replaces every value,
 * `add` appends (joined to an existing value with ", " as the spec's example
 * shows), `remove` drops the header. Applied in the order set, add, remove.
 */
export function applyHeaderFilter(h: HeaderList, f: HTTPHeaderFilter): void {
  if (f.set) for (const { name, value } of f.set) headerSet(h, name, value);
  if (f.add) {
    for (const { name, value } of f.add) {
      const l = name.toLowerCase();
      let done = false;
      for (let i = 0; i < h.length; i += 2) {
        if (h[i]!.toLowerCase() === l) { h[i + 1] = `${h[i + 1]!},${value}`; done = true; break; }
      }
      if (!done) h.push(name, value);
    }
  }
  if (f.remove) for (const name of f.remove) headerRemove(h, name.toLowerCase());
}

/**
 * Applies a path modifier. ReplacePrefixMatch replaces the matched PathPrefix
 * element-wise: with prefix "/foo", "/foo/bar" becomes "/xyz/bar" for "/xyz"
 * and "/bar" for "/"; "/foo" becomes "/xyz" (or "/"). `matchedPrefix` is the
 * router's normalised prefix (no trailing slash, "" for "/"); null when the
 * rule did not match by prefix, in which case ReplacePrefixMatch is a
 * configuration error the validator rejects, and here leaves the path alone.
 */
export function modifyPath(path: string, m: HTTPPathModifier, matchedPrefix: string | null): string {
  if (m.type === 'ReplaceFullPath') return m.replaceFullPath;
  if (matchedPrefix === null) return path;
  const rest = path.slice(matchedPrefix.length); // "" or "/…"
  let repl = m.replacePrefixMatch;
  if (repl.endsWith('/')) repl = repl.slice(0, -1);
  if (rest.length === 0) return repl.length === 0 ? '/' : repl;
  return repl + rest;
}

export interface RedirectInput {
  scheme: 'http' | 'https';
  host: string; // as received, without port
  port: number | null; // listener port, for Location
  path: string;
  query: string;
}

/**
 * The Location and status for a RequestRedirect. Per the spec the port is
 * omitted when it is the scheme's well-known port; when the filter changes the
 * scheme without naming a port, the scheme's default port is implied.
 */
export function redirectTarget(r: RedirectInput, f: HTTPRequestRedirectFilter, matchedPrefix: string | null): { status: number; location: string } {
  const scheme = f.scheme ?? r.scheme;
  const host = f.hostname ?? r.host;
  let port: number | null = f.port ?? (f.scheme !== undefined ? null : r.port);
  if (port !== null && ((scheme === 'http' && port === 80) || (scheme === 'https' && port === 443))) port = null;
  const path = f.path ? modifyPath(r.path, f.path, matchedPrefix) : r.path;
  const hostPart = port === null ? host : `${host}:${port}`;
  const location = `${scheme}://${hostPart}${path}${r.query.length > 0 ? `?${r.query}` : ''}`;
  return { status: f.statusCode ?? 302, location };
}

/**
 * Weighted choice among backendRefs; `rnd` is uniform in [0, 1). Weight
 * defaults to 1. Returns null when every weight is 0 (the spec's 500).
 */
export function pickBackend(refs: readonly BackendRef[], rnd: number): BackendRef | null {
  let total = 0;
  for (let i = 0; i < refs.length; i++) total += refs[i]!.weight ?? 1;
  if (total <= 0) return null;
  let x = rnd * total;
  for (let i = 0; i < refs.length; i++) {
    const w = refs[i]!.weight ?? 1;
    if (w <= 0) continue;
    if (x < w) return refs[i]!;
    x -= w;
  }
  for (let i = refs.length - 1; i >= 0; i--) if ((refs[i]!.weight ?? 1) > 0) return refs[i]!;
  return null;
}
