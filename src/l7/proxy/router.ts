// HTTPRoute matching with the Gateway API's precedence (gateway.networking.k8s.io/v1,
// HTTPRouteRule "matches" and HTTPRouteSpec "hostnames").
//
// Routes are compiled once into entries (one per route × hostname × rule ×
// match) sorted by precedence, so matching a request is a scan that stops at
// the first entry whose conditions all hold. Order, most specific first:
//
//   1. hostname: an exact hostname, then wildcards by length ("*.a.example.com"
//      before "*.example.com"), then routes that name no hostname;
//   2. path: Exact, then RegularExpression (longer pattern first), then
//      PathPrefix by length. The spec leaves RegularExpression's place to the
//      implementation; we do what Envoy Gateway does and put it between Exact
//      and PathPrefix. A match without a path is PathPrefix "/";
//   3. a match with a method before one without;
//   4. more header matches first; 5. more query-param matches first;
//   6. older route (creationTimestamp, else position in the list), then
//      "namespace/name" alphabetically; 7. rule order, then match order.
//
// Matches within a rule are ORed; the conditions inside one match are ANDed.
// PathPrefix is element-wise: "/foo" matches "/foo" and "/foo/bar", never
// "/foobar"; a trailing slash on the prefix is ignored. Regular expressions
// must match the whole path (or header/query value), as Envoy's safe_regex does.
// Header names compare case-insensitively, query parameter names exactly.
import { InvalidArgumentError } from '../../util/errors.js';
import { compileRegex } from '../../util/regex.js';
import type { HTTPRoute, HTTPRouteMatch, HTTPRouteRule, PathMatchType } from './types.js';

/** What the router needs from a request; implemented by the proxy without copying headers. */
export interface RouteRequest {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The raw query string after '?', or ''. */
  readonly query: string;
  /** Host header, lowercased, port removed. */
  readonly host: string;
  /** First value of a header; `name` is lowercase. */
  header(name: string): string | undefined;
}

export interface RouteMatchResult {
  readonly route: HTTPRoute;
  readonly rule: HTTPRouteRule;
  readonly ruleIndex: number;
  /** The match that selected the rule (synthesised "/" prefix when the rule has none). */
  readonly match: HTTPRouteMatch;
  /** For PathPrefix matches, the prefix (normalised, no trailing slash; "" for "/"), else null. */
  readonly matchedPrefix: string | null;
}

const PATH_RANK: Record<PathMatchType, number> = { Exact: 0, RegularExpression: 1, PathPrefix: 2 };

interface ValueCond { name: string; exact: string | null; re: RegExp | null }

class Entry implements RouteMatchResult {
  readonly pathType: PathMatchType;
  readonly pathValue: string;
  readonly prefix: string; // normalised PathPrefix: no trailing slash, "" for "/"
  readonly pathRe: RegExp | null;
  /** A regex's literal leading text: a cheap startsWith() before running it. */
  readonly literal: string = '';
  readonly method: string | null;
  readonly headers: ValueCond[];
  readonly queries: ValueCond[];
  constructor(
    readonly route: HTTPRoute,
    readonly routeOrder: number,
    readonly rule: HTTPRouteRule,
    readonly ruleIndex: number,
    readonly match: HTTPRouteMatch,
    readonly matchIndex: number,
  ) {
    const p = match.path;
    this.pathType = p?.type ?? 'PathPrefix';
    this.pathValue = p?.value ?? '/';
    this.pathRe = null;
    this.prefix = '';
    if (this.pathType === 'PathPrefix') {
      if (!this.pathValue.startsWith('/')) throw new InvalidArgumentError(`route ${route.name}: PathPrefix must start with '/': ${this.pathValue}`);
      this.prefix = this.pathValue.replace(/\/+$/, '');
    } else if (this.pathType === 'Exact') {
      if (!this.pathValue.startsWith('/')) throw new InvalidArgumentError(`route ${route.name}: Exact path must start with '/': ${this.pathValue}`);
    } else if (this.pathType === 'RegularExpression') {
      this.pathRe = compileFull(this.pathValue, `route ${route.name} path`);
      this.literal = literalPrefix(this.pathValue);
    } else throw new InvalidArgumentError(`route ${route.name}: unknown path match type ${String(this.pathType)}`);
    this.method = match.method ?? null;
    this.headers = (match.headers ?? []).map((h) => cond(h.name.toLowerCase(), h.type, h.value, `route ${route.name} header ${h.name}`));
    this.queries = (match.queryParams ?? []).map((q) => cond(q.name, q.type, q.value, `route ${route.name} query ${q.name}`));
  }
  get matchedPrefix(): string | null { return this.pathType === 'PathPrefix' ? this.prefix : null; }

  test(req: RouteRequest, q: QueryView): boolean {
    const path = req.path;
    switch (this.pathType) {
      case 'Exact': if (path !== this.pathValue) return false; break;
      case 'PathPrefix': {
        const pre = this.prefix;
        if (pre.length > 0) {
          if (!path.startsWith(pre)) return false;
          if (path.length !== pre.length && path.charCodeAt(pre.length) !== 47 /* / */) return false;
        }
        break;
      }
      default: if (!path.startsWith(this.literal) || !this.pathRe!.test(path)) return false;
    }
    if (this.method !== null && req.method !== this.method) return false;
    for (let i = 0; i < this.headers.length; i++) {
      const c = this.headers[i]!;
      const v = req.header(c.name);
      if (v === undefined || !condOk(c, v)) return false;
    }
    if (this.queries.length > 0) {
      q.load(req.query);
      for (let i = 0; i < this.queries.length; i++) {
        const c = this.queries[i]!;
        const v = q.get(c.name);
        if (v === undefined || !condOk(c, v)) return false;
      }
    }
    return true;
  }
}

/** The text every match of the pattern must start with (conservative: stops at any metacharacter). */
function literalPrefix(src: string): string {
  if (src.includes('|')) return ''; // an alternative may start anywhere
  let i = 0;
  while (i < src.length && /[A-Za-z0-9/_\-=&,;:@~]/.test(src[i]!)) i++;
  // A quantifier applies to the character before it, which is then optional.
  if (i < src.length && '*?{'.includes(src[i]!) && i > 0) i--;
  return src.slice(0, i);
}

/** A full-match RE2 pattern (linear time in the path or value, whatever the pattern). */
function compileFull(src: string, what: string): RegExp {
  try { return compileRegex(src) as RegExp; } catch (e) { throw new InvalidArgumentError(`${what}: ${(e as Error).message}`); }
}

function cond(name: string, type: string | undefined, value: string, what: string): ValueCond {
  if (type === undefined || type === 'Exact') return { name, exact: value, re: null };
  if (type === 'RegularExpression') return { name, exact: null, re: compileFull(value, what) };
  throw new InvalidArgumentError(`${what}: unknown match type ${type}`);
}

function condOk(c: ValueCond, v: string): boolean {
  return c.exact !== null ? v === c.exact : c.re!.test(v);
}

/** Lazily decoded query parameters; reused across requests (first value wins, as in Gateway API). */
class QueryView {
  private raw: string | null = null;
  private readonly map = new Map<string, string>();
  reset(): void { this.raw = null; }
  load(raw: string): void {
    if (this.raw === raw) return;
    this.raw = raw;
    this.map.clear();
    if (raw.length === 0) return;
    for (const part of raw.split('&')) {
      if (part.length === 0) continue;
      const eq = part.indexOf('=');
      const k = safeDecode(eq < 0 ? part : part.slice(0, eq));
      if (!this.map.has(k)) this.map.set(k, eq < 0 ? '' : safeDecode(part.slice(eq + 1)));
    }
  }
  get(name: string): string | undefined { return this.map.get(name); }
}

function safeDecode(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; }
}

function compare(a: Entry, b: Entry): number {
  const ra = PATH_RANK[a.pathType], rb = PATH_RANK[b.pathType];
  if (ra !== rb) return ra - rb;
  if (a.pathType === 'PathPrefix') { if (a.prefix.length !== b.prefix.length) return b.prefix.length - a.prefix.length; }
  else if (a.pathType === 'RegularExpression') { if (a.pathValue.length !== b.pathValue.length) return b.pathValue.length - a.pathValue.length; }
  const ma = a.method !== null ? 0 : 1, mb = b.method !== null ? 0 : 1;
  if (ma !== mb) return ma - mb;
  if (a.headers.length !== b.headers.length) return b.headers.length - a.headers.length;
  if (a.queries.length !== b.queries.length) return b.queries.length - a.queries.length;
  if (a.route !== b.route) {
    const ta = a.route.creationTimestamp ?? a.routeOrder, tb = b.route.creationTimestamp ?? b.routeOrder;
    if (ta !== tb) return ta - tb;
    const na = `${a.route.namespace ?? 'default'}/${a.route.name}`, nb = `${b.route.namespace ?? 'default'}/${b.route.name}`;
    if (na !== nb) return na < nb ? -1 : 1;
    return a.routeOrder - b.routeOrder;
  }
  if (a.ruleIndex !== b.ruleIndex) return a.ruleIndex - b.ruleIndex;
  return a.matchIndex - b.matchIndex;
}

const DEFAULT_MATCH: HTTPRouteMatch = Object.freeze({ path: Object.freeze({ type: 'PathPrefix' as const, value: '/' }) });

export class Router {
  private readonly exact = new Map<string, Entry[]>();
  /** Wildcard groups, longest suffix first: "*.example.com" is stored as ".example.com". */
  private readonly wildcards: { suffix: string; entries: Entry[] }[] = [];
  private readonly any: Entry[] = [];
  private readonly q = new QueryView();

  constructor(routes: readonly HTTPRoute[]) {
    const wild = new Map<string, Entry[]>();
    routes.forEach((route, order) => {
      const hosts = route.hostnames && route.hostnames.length > 0 ? route.hostnames : null;
      const entries: Entry[] = [];
      route.rules.forEach((rule, ri) => {
        const matches = rule.matches && rule.matches.length > 0 ? rule.matches : [DEFAULT_MATCH];
        matches.forEach((m, mi) => entries.push(new Entry(route, order, rule, ri, m, mi)));
      });
      if (hosts === null) { this.any.push(...entries); return; }
      for (const h0 of hosts) {
        const h = h0.toLowerCase();
        if (h.startsWith('*.')) {
          const suffix = h.slice(1);
          let g = wild.get(suffix);
          if (!g) wild.set(suffix, (g = []));
          g.push(...entries);
        } else if (h.includes('*')) {
          throw new InvalidArgumentError(`route ${route.name}: wildcard must be the whole first label: ${h0}`);
        } else {
          let g = this.exact.get(h);
          if (!g) this.exact.set(h, (g = []));
          g.push(...entries);
        }
      }
    });
    for (const g of this.exact.values()) g.sort(compare);
    for (const [suffix, entries] of wild) this.wildcards.push({ suffix, entries: entries.sort(compare) });
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.any.sort(compare);
  }

  /** The rule that serves req, or null (the proxy answers 404). */
  match(req: RouteRequest): RouteMatchResult | null {
    this.q.reset();
    const host = req.host;
    const ex = this.exact.get(host);
    if (ex !== undefined) { const e = scan(ex, req, this.q); if (e !== null) return e; }
    for (let i = 0; i < this.wildcards.length; i++) {
      const w = this.wildcards[i]!;
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) {
        const e = scan(w.entries, req, this.q);
        if (e !== null) return e;
      }
    }
    return scan(this.any, req, this.q);
  }
}

function scan(entries: Entry[], req: RouteRequest, q: QueryView): Entry | null {
  for (let i = 0; i < entries.length; i++) if (entries[i]!.test(req, q)) return entries[i]!;
  return null;
}

/** Splits a request-target into path and query without allocating when there is no query. */
export function splitTarget(target: string): { path: string; query: string } {
  const i = target.indexOf('?');
  return i < 0 ? { path: target, query: '' } : { path: target.slice(0, i), query: target.slice(i + 1) };
}

/** Host header → routing host: lowercased, port and trailing dot removed, IPv6 brackets kept. */
export function normaliseHost(host: string | undefined): string {
  if (!host) return '';
  let h = host;
  if (h.charCodeAt(0) === 91 /* [ */) { const e = h.indexOf(']'); return e > 0 ? h.slice(0, e + 1).toLowerCase() : h.toLowerCase(); }
  const c = h.lastIndexOf(':');
  if (c >= 0) h = h.slice(0, c);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}
