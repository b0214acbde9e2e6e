// Flow filters, in the spirit of `hubble observe`'s flags: a filter is
// key=value; filters with different keys must all match (AND), several values
// for one key match if any does (OR), as Hubble ORs repeated flags.
//
//   method=GET            l7.http.method (case-insensitive)
//   status=503|5xx|5+     l7.http.code (exact, class, or at least)   alias http-status
//   path=/api/*           strata.http.path (exact, '*' suffix = prefix, ^… = RE2 regex)  alias http-path
//   authority=example.com strata.http.authority                      alias host
//   identity=spiffe://td/ns/*  the peer's SPIFFE ID ('*' suffix = prefix)
//   from-ip=10.0.0.0/8    IP.source (address or IPv4 CIDR)            alias ip-src
//   to-ip=10.200.0.3      IP.destination                             alias ip-dst
//   from-port=1234  to-port=80   TCP/UDP ports
//   verdict=FORWARDED|DROPPED|ERROR
//   type=l7|l4            Type (l4 = L3_L4)
//   transport=afxdp|tap|kernel
//   protocol=tcp|udp|http
//   uuid=…
// A bad filter is a usage error (FlowFilterError), reported before anything runs.
import { StrataError } from '../util/errors.js';
import { compileRegex, type UserRegex } from '../util/regex.js';
import type { FlowRecord } from './record.js';

export class FlowFilterError extends StrataError {
  constructor(message: string) { super('ERR_STRATA_FLOW_FILTER', message); }
}

type Pred = (r: FlowRecord) => boolean;

const ALIASES: Record<string, string> = {
  'http-status': 'status', code: 'status', 'http-method': 'method', 'http-path': 'path', host: 'authority',
  'ip-src': 'from-ip', 'source-ip': 'from-ip', 'src-ip': 'from-ip', 'ip-dst': 'to-ip', 'destination-ip': 'to-ip', 'dst-ip': 'to-ip',
  'port-src': 'from-port', 'src-port': 'from-port', 'port-dst': 'to-port', 'dst-port': 'to-port', 'spiffe-id': 'identity', 'from-identity': 'identity',
};

function ip4(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return -1;
  let a = 0;
  for (let i = 1; i <= 4; i++) { const o = Number(m[i]); if (o > 255) return -1; a = a * 256 + o; }
  return a;
}

function addrMatcher(v: string, key: string): (a: string | undefined) => boolean {
  const slash = v.indexOf('/');
  if (slash < 0) return (a) => a === v;
  const base = ip4(v.slice(0, slash));
  const len = Number(v.slice(slash + 1));
  if (base < 0 || !Number.isInteger(len) || len < 0 || len > 32) throw new FlowFilterError(`${key}: not an IPv4 address or CIDR: ${v}`);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const net = (base & mask) >>> 0;
  return (a) => { if (a === undefined) return false; const x = ip4(a); return x >= 0 && ((x & mask) >>> 0) === net; };
}

function textMatcher(v: string, caseless = false): (s: string | undefined | null) => boolean {
  if (v.startsWith('^')) {
    let re: UserRegex;
    try { re = compileRegex(v, { full: false, ignoreCase: caseless }); } catch (e) { throw new FlowFilterError((e as Error).message); }
    return (s) => s != null && re.test(s);
  }
  if (v.endsWith('*')) { const p = v.slice(0, -1); return (s) => s != null && (caseless ? s.toLowerCase().startsWith(p.toLowerCase()) : s.startsWith(p)); }
  return (s) => s != null && (caseless ? s.toLowerCase() === v.toLowerCase() : s === v);
}

function statusMatcher(v: string): Pred {
  let m = /^([1-5])xx$/i.exec(v);
  if (m) { const c = Number(m[1]); return (r) => r.l7 !== null && Math.floor(r.l7.http.code / 100) === c; }
  m = /^(\d{1,3})\+$/.exec(v);
  if (m) { const lo = Number(m[1]) < 10 ? Number(m[1]) * 100 : Number(m[1]); return (r) => r.l7 !== null && r.l7.http.code >= lo; }
  if (/^\d{3}$/.test(v)) { const c = Number(v); return (r) => r.l7 !== null && r.l7.http.code === c; }
  throw new FlowFilterError(`status: expected a code (503), a class (5xx) or a floor (5+), got ${v}`);
}

function portOf(r: FlowRecord, which: 'source_port' | 'destination_port'): number | undefined {
  const l4 = r.l4;
  if (l4 === null) return undefined;
  return l4.TCP?.[which] ?? l4.UDP?.[which];
}

function identityOf(r: FlowRecord): string | null {
  return r.strata.tls?.peer_spiffe_id ?? r.source?.labels.find((l) => l.startsWith('spiffe://')) ?? null;
}

function predicate(key: string, v: string): Pred {
  switch (key) {
    case 'method': return (r) => r.l7 !== null && r.l7.http.method.toUpperCase() === v.toUpperCase();
    case 'status': return statusMatcher(v);
    case 'path': { const m = textMatcher(v); return (r) => m(r.strata.http?.path); }
    case 'authority': { const m = textMatcher(v, true); return (r) => m(r.strata.http?.authority); }
    case 'identity': { const m = textMatcher(v); return (r) => m(identityOf(r)); }
    case 'from-ip': { const m = addrMatcher(v, key); return (r) => m(r.IP?.source); }
    case 'to-ip': { const m = addrMatcher(v, key); return (r) => m(r.IP?.destination); }
    case 'ip': { const m = addrMatcher(v, key); return (r) => m(r.IP?.source) || m(r.IP?.destination); }
    case 'from-port':
    case 'to-port':
    case 'port': {
      const p = Number(v);
      if (!Number.isInteger(p) || p < 0 || p > 65535) throw new FlowFilterError(`${key}: not a port: ${v}`);
      if (key === 'from-port') return (r) => portOf(r, 'source_port') === p;
      if (key === 'to-port') return (r) => portOf(r, 'destination_port') === p;
      return (r) => portOf(r, 'source_port') === p || portOf(r, 'destination_port') === p;
    }
    case 'verdict': { const u = v.toUpperCase(); return (r) => r.verdict === u; }
    case 'type': {
      const t = v.toLowerCase();
      if (t === 'l7') return (r) => r.Type === 'L7';
      if (t === 'l4' || t === 'l3_l4' || t === 'trace') return (r) => r.Type === 'L3_L4';
      throw new FlowFilterError(`type: expected l7 or l4, got ${v}`);
    }
    case 'transport': return (r) => r.strata.transport === v;
    case 'protocol': {
      const p = v.toLowerCase();
      if (p === 'http') return (r) => r.l7 !== null;
      if (p === 'tcp') return (r) => r.l4?.TCP !== undefined;
      if (p === 'udp') return (r) => r.l4?.UDP !== undefined;
      if (p === 'icmp') return (r) => r.l4?.ICMPv4 !== undefined;
      throw new FlowFilterError(`protocol: expected http, tcp, udp or icmp, got ${v}`);
    }
    case 'uuid': return (r) => r.uuid === v;
    default: throw new FlowFilterError(`unknown filter key '${key}'`);
  }
}

export interface FlowFilter {
  /** The filters as given, normalised to key=value (for passing on, e.g. as query parameters). */
  readonly terms: readonly string[];
  match(r: FlowRecord): boolean;
}

/** Compiles filter terms ("key=value"). No terms: everything matches. */
export function compileFilter(terms: readonly string[]): FlowFilter {
  const byKey = new Map<string, Pred[]>();
  const norm: string[] = [];
  for (const t of terms) {
    const eq = t.indexOf('=');
    if (eq <= 0) throw new FlowFilterError(`filter must be key=value, got ${JSON.stringify(t)}`);
    const raw = t.slice(0, eq).trim().toLowerCase().replace(/_/g, '-');
    const key = ALIASES[raw] ?? raw;
    const v = t.slice(eq + 1).trim();
    if (v === '') throw new FlowFilterError(`filter ${key} has an empty value`);
    const p = predicate(key, v);
    const l = byKey.get(key);
    if (l) l.push(p); else byKey.set(key, [p]);
    norm.push(`${key}=${v}`);
  }
  const groups = [...byKey.values()];
  return {
    terms: norm,
    match(r: FlowRecord): boolean {
      for (const g of groups) {
        let any = false;
        for (const p of g) if (p(r)) { any = true; break; }
        if (!any) return false;
      }
      return true;
    },
  };
}
