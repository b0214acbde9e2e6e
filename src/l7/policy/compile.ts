// Compiling and evaluating L7 policy (see types.ts for the rule language).
//
// Compile once: every regex is anchored (^(?:…)$, the full match Envoy's
// safe_regex does for Cilium's method/path/host) and built once with RE2,
// the engine Envoy and Cilium use (linear time; RE2 itself refuses
// backreferences and lookaround); CIDRs become word arrays; header names
// are lower-cased; every verdict a request can get is built ahead of time.
//
// Evaluate without allocating: the source address is parsed into a
// module-level scratch array, rules are walked with index loops, and the
// verdict returned is one of the prebuilt objects.
import { StrataError } from '../../util/errors.js';
import { compileRegex as compileUserRegex, type RegexSyntaxError } from '../../util/regex.js';
import { parseSpiffeId, trustDomainError, pathError } from '../tls/spiffe.js';
import { parseAddrInto, parsePrefix, prefixContains, prefixCovers, type Prefix } from './cidr.js';
import type {
  PolicySpec, PolicyRequest, Verdict, IdentitySelectorSpec, CidrSetSpec, PortSpec, HttpRuleSpec,
} from './types.js';

export interface PolicyIssue {
  /** field path relative to the list of policies, e.g. "[0].ingress[1].toPorts[0].rules.http[0].path" */
  path: string;
  message: string;
}

export class PolicyCompileError extends StrataError {
  constructor(readonly issues: PolicyIssue[]) {
    super('ERR_STRATA_POLICY', `invalid policy: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
}

const enum IdKind { Exact, TrustDomain, PathPrefix }
interface CIdentity { kind: IdKind; spiffeId: string; trustDomain: string; prefix: string }
interface CCidr { p: Prefix; except: Prefix[] }
interface CPeers { any: boolean; ids: CIdentity[]; cidrs: CCidr[] }
interface CHeader { name: string; value: string | null }
interface CHttp { method: RegExp | null; path: RegExp | null; host: RegExp | null; headers: CHeader[]; verdict: Verdict }
interface CPortRule { ports: number[]; http: CHttp[] | null; verdict: Verdict }
interface CIngress { peers: CPeers; toPorts: CPortRule[] | null; verdict: Verdict }
interface CDeny { peers: CPeers; ports: number[] | null; protocols: ('TCP' | 'ANY')[] | null; verdict: Verdict; path: string }
interface CPolicy { name: string; listeners: string[] | null; ingress: CIngress[]; deny: CDeny[] }

/** Verdicts that come from no rule. */
export const NO_POLICY: Verdict = Object.freeze({ action: 'allow', allowed: true, policy: null, rule: 'no-policy', reason: 'no policy selects this listener' });

function verdict(action: 'allow' | 'deny', policy: string | null, rule: string, reason: string): Verdict {
  return Object.freeze({ action, allowed: action === 'allow', policy, rule, reason });
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Compiles anchored with RE2 (src/util/regex.ts): RE2 refuses what Envoy, hence Cilium, refuses. */
function compileRegex(src: unknown, path: string, issues: PolicyIssue[]): RegExp | null {
  if (src === undefined || src === '') return null;
  if (typeof src !== 'string') { issues.push({ path, message: 'must be a string (a regular expression)' }); return null; }
  try {
    return compileUserRegex(src) as RegExp;
  } catch (err) {
    issues.push({ path, message: (err as RegexSyntaxError).issue });
    return null;
  }
}

function compileIdentity(s: unknown, path: string, issues: PolicyIssue[]): CIdentity | null {
  if (!isObj(s)) { issues.push({ path, message: 'must be an object with spiffeId or trustDomain' }); return null; }
  const sel = s as IdentitySelectorSpec;
  if (sel.spiffeId !== undefined) {
    if (sel.trustDomain !== undefined || sel.pathPrefix !== undefined) {
      issues.push({ path, message: 'spiffeId excludes trustDomain and pathPrefix' });
      return null;
    }
    try {
      const id = parseSpiffeId(sel.spiffeId);
      return { kind: IdKind.Exact, spiffeId: id.spiffeId, trustDomain: id.trustDomain, prefix: '' };
    } catch (err) {
      issues.push({ path: `${path}.spiffeId`, message: (err as Error).message });
      return null;
    }
  }
  if (sel.trustDomain === undefined) { issues.push({ path, message: 'needs spiffeId or trustDomain' }); return null; }
  const tdErr = typeof sel.trustDomain === 'string' ? trustDomainError(sel.trustDomain) : 'must be a string';
  if (tdErr) { issues.push({ path: `${path}.trustDomain`, message: tdErr }); return null; }
  if (sel.pathPrefix === undefined) return { kind: IdKind.TrustDomain, spiffeId: '', trustDomain: sel.trustDomain, prefix: '' };
  const pErr = typeof sel.pathPrefix !== 'string' ? 'must be a string'
    : sel.pathPrefix === '' ? 'must not be empty (omit it to match the whole trust domain)' : pathError(sel.pathPrefix);
  if (pErr) { issues.push({ path: `${path}.pathPrefix`, message: pErr }); return null; }
  return { kind: IdKind.PathPrefix, spiffeId: '', trustDomain: sel.trustDomain, prefix: sel.pathPrefix };
}

function compilePrefix(text: unknown, path: string, issues: PolicyIssue[]): Prefix | null {
  const p = parsePrefix(text as string);
  if (typeof p === 'string') { issues.push({ path, message: p }); return null; }
  return p;
}

function compilePeers(rule: Record<string, unknown>, path: string, issues: PolicyIssue[]): CPeers {
  const peers: CPeers = { any: true, ids: [], cidrs: [] };
  const ids = rule.fromIdentities;
  const cidrs = rule.fromCIDR;
  const sets = rule.fromCIDRSet;
  const arr = (v: unknown, f: string): unknown[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) { issues.push({ path: `${path}.${f}`, message: 'must be a list' }); return []; }
    return v;
  };
  arr(ids, 'fromIdentities').forEach((s, i) => { const c = compileIdentity(s, `${path}.fromIdentities[${i}]`, issues); if (c) peers.ids.push(c); });
  arr(cidrs, 'fromCIDR').forEach((s, i) => { const p = compilePrefix(s, `${path}.fromCIDR[${i}]`, issues); if (p) peers.cidrs.push({ p, except: [] }); });
  arr(sets, 'fromCIDRSet').forEach((s, i) => {
    const sp = `${path}.fromCIDRSet[${i}]`;
    if (!isObj(s)) { issues.push({ path: sp, message: 'must be an object {cidr, except}' }); return; }
    const set = s as unknown as CidrSetSpec;
    const p = compilePrefix(set.cidr, `${sp}.cidr`, issues);
    if (!p) return;
    const except: Prefix[] = [];
    arr(set.except, `fromCIDRSet[${i}].except`).forEach((e, j) => {
      const ep = compilePrefix(e, `${sp}.except[${j}]`, issues);
      if (!ep) return;
      if (!prefixCovers(p, ep)) issues.push({ path: `${sp}.except[${j}]`, message: `${ep.text} is not inside ${p.text}` });
      else except.push(ep);
    });
    peers.cidrs.push({ p, except });
  });
  peers.any = arr(ids, 'x').length === 0 && arr(cidrs, 'x').length === 0 && arr(sets, 'x').length === 0;
  return peers;
}

function compilePorts(v: unknown, path: string, issues: PolicyIssue[]): { ports: number[]; protocols: ('TCP' | 'ANY')[] } {
  const out = { ports: [] as number[], protocols: [] as ('TCP' | 'ANY')[] };
  if (v === undefined) return out;
  if (!Array.isArray(v)) { issues.push({ path, message: 'must be a list' }); return out; }
  v.forEach((ps, i) => {
    const pp = `${path}[${i}]`;
    if (!isObj(ps)) { issues.push({ path: pp, message: 'must be an object {port, protocol}' }); return; }
    const spec = ps as unknown as PortSpec;
    const n = typeof spec.port === 'string' && /^[0-9]+$/.test(spec.port) ? Number(spec.port) : spec.port;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) {
      issues.push({ path: `${pp}.port`, message: typeof spec.port === 'string' ? 'named ports are not supported; use a number 1..65535' : 'must be a port number 1..65535' });
      return;
    }
    const proto = spec.protocol ?? 'TCP';
    if (proto !== 'TCP' && proto !== 'ANY') { issues.push({ path: `${pp}.protocol`, message: 'must be one of TCP, ANY (L7 policy is for TCP)' }); return; }
    out.ports.push(n);
    out.protocols.push(proto);
  });
  return out;
}

function compileHttp(h: unknown, path: string, policy: string, rule: string, issues: PolicyIssue[]): CHttp | null {
  if (!isObj(h)) { issues.push({ path, message: 'must be an object {method, path, host, headers, headerMatches}' }); return null; }
  const spec = h as HttpRuleSpec;
  const headers: CHeader[] = [];
  if (spec.headers !== undefined) {
    if (!Array.isArray(spec.headers)) issues.push({ path: `${path}.headers`, message: 'must be a list of "Name" or "Name: value"' });
    else spec.headers.forEach((line, i) => {
      if (typeof line !== 'string') { issues.push({ path: `${path}.headers[${i}]`, message: 'must be a string "Name" or "Name: value"' }); return; }
      const colon = line.indexOf(':');
      const name = (colon < 0 ? line : line.slice(0, colon)).trim();
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) { issues.push({ path: `${path}.headers[${i}]`, message: `invalid header name ${JSON.stringify(name)}` }); return; }
      headers.push({ name: name.toLowerCase(), value: colon < 0 ? null : line.slice(colon + 1).trim() });
    });
  }
  if (spec.headerMatches !== undefined) {
    if (!Array.isArray(spec.headerMatches)) issues.push({ path: `${path}.headerMatches`, message: 'must be a list of {name, value}' });
    else spec.headerMatches.forEach((m, i) => {
      const mp = `${path}.headerMatches[${i}]`;
      if (!isObj(m) || typeof m.name !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(m.name)) { issues.push({ path: `${mp}.name`, message: 'must be a header name' }); return; }
      if (m.value !== undefined && typeof m.value !== 'string') { issues.push({ path: `${mp}.value`, message: 'must be a string' }); return; }
      headers.push({ name: m.name.toLowerCase(), value: (m.value as string | undefined) ?? null });
    });
  }
  const method = compileRegex(spec.method, `${path}.method`, issues);
  const p = compileRegex(spec.path, `${path}.path`, issues);
  if (p !== null && typeof spec.path === 'string' && !spec.path.startsWith('/'))
    issues.push({ path: `${path}.path`, message: 'must begin with "/" (it is matched against the request path)' });
  const host = compileRegex(spec.host, `${path}.host`, issues);
  return { method, path: p, host, headers, verdict: verdict('allow', policy, rule, `allowed by ${policy} ${rule}`) };
}

function compilePolicy(spec: unknown, idx: number, issues: PolicyIssue[]): CPolicy | null {
  const base = `[${idx}]`;
  if (!isObj(spec)) { issues.push({ path: base, message: 'must be an object' }); return null; }
  const s = spec as unknown as PolicySpec;
  if (typeof s.name !== 'string' || !/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(s.name))
    issues.push({ path: `${base}.name`, message: 'must be a DNS-1123 subdomain name (lower case letters, digits, "-", ".")' });
  const name = typeof s.name === 'string' ? s.name : `#${idx}`;
  let listeners: string[] | null = null;
  if (s.selector !== undefined) {
    if (!isObj(s.selector)) issues.push({ path: `${base}.selector`, message: 'must be an object {listeners}' });
    else if (s.selector.listeners !== undefined) {
      if (!Array.isArray(s.selector.listeners) || s.selector.listeners.some((l) => typeof l !== 'string'))
        issues.push({ path: `${base}.selector.listeners`, message: 'must be a list of listener names' });
      else listeners = [...s.selector.listeners];
    }
  }
  const ingress: CIngress[] = [];
  const deny: CDeny[] = [];
  const list = (v: unknown, f: string): unknown[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) { issues.push({ path: `${base}.${f}`, message: 'must be a list' }); return []; }
    return v;
  };
  list(s.ingress, 'ingress').forEach((r, i) => {
    const rp = `${base}.ingress[${i}]`;
    const rule = `ingress[${i}]`;
    if (!isObj(r)) { issues.push({ path: rp, message: 'must be an object' }); return; }
    const peers = compilePeers(r, rp, issues);
    let toPorts: CPortRule[] | null = null;
    if (r.toPorts !== undefined) {
      toPorts = [];
      list(r.toPorts, `ingress[${i}].toPorts`).forEach((pr, j) => {
        const pp = `${rp}.toPorts[${j}]`;
        const prule = `${rule}.toPorts[${j}]`;
        if (!isObj(pr)) { issues.push({ path: pp, message: 'must be an object {ports, rules}' }); return; }
        const { ports } = compilePorts(pr.ports, `${pp}.ports`, issues);
        let http: CHttp[] | null = null;
        if (pr.rules !== undefined) {
          if (!isObj(pr.rules)) issues.push({ path: `${pp}.rules`, message: 'must be an object {http}' });
          else if (pr.rules.http !== undefined) {
            http = [];
            list(pr.rules.http, `ingress[${i}].toPorts[${j}].rules.http`).forEach((h, k) => {
              const c = compileHttp(h, `${pp}.rules.http[${k}]`, name, `${prule}.rules.http[${k}]`, issues);
              if (c) http!.push(c);
            });
          }
        }
        toPorts!.push({ ports, http, verdict: verdict('allow', name, prule, `allowed by ${name} ${prule}`) });
      });
    }
    ingress.push({ peers, toPorts, verdict: verdict('allow', name, rule, `allowed by ${name} ${rule}`) });
  });
  list(s.ingressDeny, 'ingressDeny').forEach((r, i) => {
    const rp = `${base}.ingressDeny[${i}]`;
    const rule = `ingressDeny[${i}]`;
    if (!isObj(r)) { issues.push({ path: rp, message: 'must be an object' }); return; }
    const peers = compilePeers(r, rp, issues);
    let ports: number[] | null = null;
    let protocols: ('TCP' | 'ANY')[] | null = null;
    if (r.toPorts !== undefined) {
      ports = []; protocols = [];
      list(r.toPorts, `ingressDeny[${i}].toPorts`).forEach((pr, j) => {
        const pp = `${rp}.toPorts[${j}]`;
        if (!isObj(pr)) { issues.push({ path: pp, message: 'must be an object {ports}' }); return; }
        if (pr.rules !== undefined) { issues.push({ path: `${pp}.rules`, message: 'L7 rules are not allowed in ingressDeny (as in Cilium): deny is L3/L4 only' }); return; }
        const c = compilePorts(pr.ports, `${pp}.ports`, issues);
        ports!.push(...c.ports); protocols!.push(...c.protocols);
      });
    }
    deny.push({ peers, ports, protocols, verdict: verdict('deny', name, rule, `denied by ${name} ${rule}`), path: rule });
  });
  return { name, listeners, ingress, deny };
}

// ---- evaluation (hot path: no allocation) ----

const ADDR = new Uint32Array(4);

function identityMatches(ids: CIdentity[], id: PolicyRequest['identity']): boolean {
  if (id === null) return false;
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i]!;
    if (s.kind === IdKind.Exact) { if (s.spiffeId === id.spiffeId) return true; continue; }
    if (s.trustDomain !== id.trustDomain) continue;
    if (s.kind === IdKind.TrustDomain) return true;
    // segment-wise prefix: /ns/prod matches /ns/prod and /ns/prod/…, not /ns/production
    const p = id.path;
    if (p.startsWith(s.prefix) && (p.length === s.prefix.length || p.charCodeAt(s.prefix.length) === 0x2f)) return true;
  }
  return false;
}

function cidrMatches(cidrs: CCidr[], fam: number): boolean {
  if (fam === 0) return false;
  for (let i = 0; i < cidrs.length; i++) {
    const c = cidrs[i]!;
    if (!prefixContains(c.p, fam, ADDR)) continue;
    let excepted = false;
    for (let j = 0; j < c.except.length; j++) if (prefixContains(c.except[j]!, fam, ADDR)) { excepted = true; break; }
    if (!excepted) return true;
  }
  return false;
}

function peersMatch(p: CPeers, fam: number, id: PolicyRequest['identity']): boolean {
  return p.any || identityMatches(p.ids, id) || cidrMatches(p.cidrs, fam);
}

function portIn(ports: number[], port: number): boolean {
  if (ports.length === 0) return true; // Cilium: a PortRule without ports applies to all ports
  for (let i = 0; i < ports.length; i++) if (ports[i] === port) return true;
  return false;
}

function httpMatches(h: CHttp, req: PolicyRequest): boolean {
  if (h.method !== null && !h.method.test(req.method)) return false;
  if (h.path !== null && !h.path.test(req.path)) return false;
  if (h.host !== null && !h.host.test(req.host)) return false;
  for (let i = 0; i < h.headers.length; i++) {
    const m = h.headers[i]!;
    const v = req.header(m.name);
    if (v === undefined) return false;
    if (m.value !== null && v !== m.value) return false;
  }
  return true;
}

/** The compiled policy for one listener. */
export class ListenerPolicy {
  /** false: no policy selects the listener, everything is allowed (deny rules still apply) */
  readonly selected: boolean;
  private readonly ingress: CIngress[];
  private readonly deny: CDeny[];
  private readonly defaultDenyL4: Verdict;
  private readonly defaultDenyL7: Verdict;

  constructor(readonly listener: string, policies: CPolicy[]) {
    this.selected = policies.length > 0;
    this.ingress = policies.flatMap((p) => p.ingress);
    this.deny = policies.flatMap((p) => p.deny);
    const names = policies.map((p) => p.name).join(', ');
    this.defaultDenyL4 = verdict('deny', null, 'default-deny', `no rule of ${names} allows this source and port on listener ${listener}`);
    this.defaultDenyL7 = verdict('deny', null, 'default-deny', `no HTTP rule of ${names} matches this request on listener ${listener}`);
  }

  /** The verdict for one HTTP request. Allocation-free; the result is shared and frozen. */
  evaluate(req: PolicyRequest): Verdict {
    const fam = parseAddrInto(req.srcAddr, ADDR);
    const id = req.identity;
    const port = req.port;
    for (let i = 0; i < this.deny.length; i++) {
      const d = this.deny[i]!;
      if ((d.ports === null || portIn(d.ports, port)) && peersMatch(d.peers, fam, id)) return d.verdict;
    }
    if (!this.selected) return NO_POLICY;
    let l4Matched = false;
    for (let i = 0; i < this.ingress.length; i++) {
      const r = this.ingress[i]!;
      if (!peersMatch(r.peers, fam, id)) continue;
      if (r.toPorts === null) return r.verdict;
      for (let j = 0; j < r.toPorts.length; j++) {
        const pr = r.toPorts[j]!;
        if (!portIn(pr.ports, port)) continue;
        if (pr.http === null) return pr.verdict;
        l4Matched = true;
        for (let k = 0; k < pr.http.length; k++) if (httpMatches(pr.http[k]!, req)) return pr.http[k]!.verdict;
      }
    }
    return l4Matched ? this.defaultDenyL7 : this.defaultDenyL4;
  }

  /**
   * The L3/L4 part alone, for a new connection before any request: deny if
   * an ingressDeny rule matches, or if the listener is selected and no
   * ingress rule admits this source and port whatever the request. An allow
   * here is provisional when HTTP rules apply (evaluate() decides per request).
   */
  admitConnection(port: number, srcAddr: string, identity: PolicyRequest['identity']): Verdict {
    const fam = parseAddrInto(srcAddr, ADDR);
    for (let i = 0; i < this.deny.length; i++) {
      const d = this.deny[i]!;
      if ((d.ports === null || portIn(d.ports, port)) && peersMatch(d.peers, fam, identity)) return d.verdict;
    }
    if (!this.selected) return NO_POLICY;
    for (let i = 0; i < this.ingress.length; i++) {
      const r = this.ingress[i]!;
      if (!peersMatch(r.peers, fam, identity)) continue;
      if (r.toPorts === null) return r.verdict;
      for (let j = 0; j < r.toPorts.length; j++) if (portIn(r.toPorts[j]!.ports, port)) return r.toPorts[j]!.verdict;
    }
    return this.defaultDenyL4;
  }

  /** @internal for l4DenyEntries */
  denyRules(): readonly CDeny[] { return this.deny; }
}

/** A compiled set of policies. */
export class PolicySet {
  private readonly cache = new Map<string, ListenerPolicy>();
  /** @internal */
  readonly compiled: readonly CPolicy[];

  constructor(compiled: CPolicy[]) { this.compiled = compiled; }

  /** Policies that select `listener` (a policy without selector.listeners selects all). */
  forListener(listener: string): ListenerPolicy {
    let lp = this.cache.get(listener);
    if (!lp) {
      lp = new ListenerPolicy(listener, this.compiled.filter((p) => p.listeners === null || p.listeners.includes(listener)));
      this.cache.set(listener, lp);
    }
    return lp;
  }

  selects(listener: string): boolean { return this.forListener(listener).selected; }

  evaluate(listener: string, req: PolicyRequest): Verdict { return this.forListener(listener).evaluate(req); }

  get names(): string[] { return this.compiled.map((p) => p.name); }
}

/** Validates policies without throwing: every issue, with its field path. */
export function checkPolicies(specs: readonly unknown[]): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const seen = new Set<string>();
  specs.forEach((s, i) => {
    compilePolicy(s, i, issues);
    const name = isObj(s) ? s.name : undefined;
    if (typeof name === 'string') {
      if (seen.has(name)) issues.push({ path: `[${i}].name`, message: `duplicate policy name ${JSON.stringify(name)}` });
      seen.add(name);
    }
  });
  return issues;
}

/** Compiles policies; throws PolicyCompileError listing every issue. */
export function compilePolicies(specs: readonly PolicySpec[]): PolicySet {
  const issues = checkPolicies(specs);
  if (issues.length > 0) throw new PolicyCompileError(issues);
  const compiled: CPolicy[] = [];
  specs.forEach((s, i) => { compiled.push(compilePolicy(s, i, [])!); });
  return new PolicySet(compiled);
}

export type { CDeny as CompiledDenyRule, CPolicy as CompiledPolicy };
