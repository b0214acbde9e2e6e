// L7 policy: rule semantics as CiliumNetworkPolicy defines them (additive
// allows, deny wins, default deny once selected, anchored regexes), SPIFFE
// identity selectors, CIDRs with except in both families, the verdicts, the
// L3/L4 deny extraction and compile errors with field paths.
import { describe, it, expect } from 'vitest';
import { PerformanceObserver } from 'node:perf_hooks';
import {
  compilePolicies, checkPolicies, l4DenyEntries, PolicyCompileError, NO_POLICY, verdictLogRecord, forbiddenResponse,
  parseAddrInto, parsePrefix, prefixContains, subtractPrefixes,
  type PolicySpec, type PolicyRequest, type Prefix,
} from '../src/l7/policy/index.js';
import { parseSpiffeId } from '../src/l7/tls/index.js';

/** One reusable request, re-pointed per case as the server will do. */
function req(over: Partial<Omit<PolicyRequest, 'header' | 'identity'>> & { id?: string | null; headers?: Record<string, string> } = {}): PolicyRequest {
  const headers = new Map(Object.entries(over.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    port: over.port ?? 8080,
    srcAddr: over.srcAddr ?? '10.200.0.1',
    identity: over.id === undefined || over.id === null ? null : parseSpiffeId(over.id),
    method: over.method ?? 'GET',
    path: over.path ?? '/',
    host: over.host ?? 'api.example.org',
    header: (n) => headers.get(n),
  };
}

const api: PolicySpec = {
  name: 'api',
  selector: { listeners: ['public'] },
  ingress: [
    {
      fromIdentities: [{ spiffeId: 'spiffe://example.org/ns/default/sa/client' }],
      toPorts: [{
        ports: [{ port: 8080, protocol: 'TCP' }],
        rules: { http: [
          { method: 'GET', path: '/public/.*' },
          { method: 'POST|PUT', path: '/api/v[0-9]+/items', headers: ['X-Tenant: acme', 'X-Request-Id'] },
          { method: 'GET', path: '/admin', host: 'admin\\.example\\.org', headerMatches: [{ name: 'x-role', value: 'admin' }] },
        ] },
      }],
    },
    { fromIdentities: [{ trustDomain: 'example.org', pathPrefix: '/ns/ops' }], toPorts: [{ ports: [{ port: 8080 }] }] },
    { fromCIDRSet: [{ cidr: '192.168.0.0/16', except: ['192.168.66.0/24'] }], toPorts: [{ ports: [{ port: '8080' }], rules: { http: [{ path: '/healthz' }] } }] },
    { fromCIDR: ['2001:db8:1::/48'] },
  ],
  ingressDeny: [{ fromCIDR: ['10.66.0.0/16'] }],
};

describe('evaluate', () => {
  const set = compilePolicies([api]);
  const lp = set.forListener('public');

  it('allows what a rule matches and names the rule', () => {
    const v = lp.evaluate(req({ id: 'spiffe://example.org/ns/default/sa/client', path: '/public/index.html' }));
    expect(v).toMatchObject({ action: 'allow', allowed: true, policy: 'api', rule: 'ingress[0].toPorts[0].rules.http[0]' });
    expect(v.reason).toContain('api ingress[0].toPorts[0].rules.http[0]');
  });

  it('anchors regexes: method, path and host must match whole', () => {
    const id = 'spiffe://example.org/ns/default/sa/client';
    expect(lp.evaluate(req({ id, method: 'GETX', path: '/public/x' })).allowed).toBe(false);
    expect(lp.evaluate(req({ id, path: '/x/public/x' })).allowed).toBe(false);
    expect(lp.evaluate(req({ id, method: 'POST', path: '/api/v2/items', headers: { 'X-Tenant': 'acme', 'X-Request-Id': '1' } })).rule)
      .toBe('ingress[0].toPorts[0].rules.http[1]');
    expect(lp.evaluate(req({ id, method: 'POST', path: '/api/v2/items/1', headers: { 'X-Tenant': 'acme', 'X-Request-Id': '1' } })).allowed).toBe(false);
    expect(lp.evaluate(req({ id, method: 'POSTPUT', path: '/api/v2/items', headers: { 'X-Tenant': 'acme', 'X-Request-Id': '1' } })).allowed).toBe(false);
  });

  it('matches headers exactly, by presence, and case-insensitively by name', () => {
    const id = 'spiffe://example.org/ns/default/sa/client';
    const base = { id, method: 'PUT', path: '/api/v1/items' };
    expect(lp.evaluate(req({ ...base, headers: { 'x-tenant': 'acme', 'x-request-id': '' } })).allowed).toBe(true);
    expect(lp.evaluate(req({ ...base, headers: { 'x-tenant': 'acme2', 'x-request-id': '7' } })).allowed).toBe(false);
    expect(lp.evaluate(req({ ...base, headers: { 'x-tenant': 'acme' } })).allowed).toBe(false);
    const admin = { id, path: '/admin', host: 'admin.example.org' };
    expect(lp.evaluate(req({ ...admin, headers: { 'X-Role': 'admin' } })).rule).toBe('ingress[0].toPorts[0].rules.http[2]');
    expect(lp.evaluate(req({ ...admin, host: 'adminXexample.org', headers: { 'X-Role': 'admin' } })).allowed).toBe(false);
    expect(lp.evaluate(req({ ...admin, headers: { 'X-Role': 'user' } })).allowed).toBe(false);
  });

  it('default-denies once selected, telling an L7 miss from an L3/L4 miss', () => {
    const l7 = lp.evaluate(req({ id: 'spiffe://example.org/ns/default/sa/client', method: 'DELETE', path: '/public/x' }));
    expect(l7).toMatchObject({ action: 'deny', allowed: false, policy: null, rule: 'default-deny' });
    expect(l7.reason).toMatch(/no HTTP rule of api matches/);
    const l4 = lp.evaluate(req({ id: 'spiffe://example.org/ns/default/sa/other', path: '/public/x' }));
    expect(l4.rule).toBe('default-deny');
    expect(l4.reason).toMatch(/no rule of api allows this source and port/);
    // right identity, wrong port
    expect(lp.evaluate(req({ id: 'spiffe://example.org/ns/default/sa/client', port: 9090, path: '/public/x' })).allowed).toBe(false);
  });

  it('returns shared frozen verdicts (no per-request allocation)', () => {
    const r = req({ id: 'spiffe://example.org/ns/default/sa/client', path: '/public/a' });
    const a = lp.evaluate(r);
    const b = lp.evaluate(req({ id: 'spiffe://example.org/ns/default/sa/client', path: '/public/b' }));
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
    const d1 = lp.evaluate(req({ path: '/nope' }));
    expect(lp.evaluate(req({ path: '/nope2' }))).toBe(d1);
  });

  it('allocates nothing per evaluation: no scavenge in 2 million evaluations', async () => {
    // With even 8 bytes per call, 2e6 calls fill the young generation (at
    // most 16 MiB per semi-space) several times; a synchronous loop leaves
    // nothing else to allocate on this thread.
    const hdr = new Map([['x-tenant', 'acme'], ['x-request-id', '1']]);
    const r: PolicyRequest = { port: 8080, srcAddr: '2001:db8:1::9', identity: parseSpiffeId('spiffe://example.org/ns/default/sa/client'),
      method: 'PUT', path: '/api/v1/items', host: 'h', header: (n) => hdr.get(n) };
    const r4: PolicyRequest = { ...r, srcAddr: '::ffff:192.168.3.4', path: '/healthz', identity: null };
    for (let i = 0; i < 50_000; i++) { lp.evaluate(r); lp.evaluate(r4); }
    const kinds: number[] = [];
    const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) kinds.push((e as unknown as { detail: { kind: number } }).detail.kind); });
    obs.observe({ entryTypes: ['gc'] });
    await new Promise((res) => setTimeout(res, 50));
    kinds.length = 0;
    let allowed = 0;
    for (let i = 0; i < 1_000_000; i++) { if (lp.evaluate(r).allowed) allowed++; if (lp.evaluate(r4).allowed) allowed++; }
    await new Promise((res) => setTimeout(res, 50));
    obs.disconnect();
    expect(allowed).toBe(2_000_000);
    expect(kinds.filter((k) => k === 1 /* NODE_PERFORMANCE_GC_MINOR */)).toEqual([]);
  });

  it('trust domain + path prefix selects by whole segments', () => {
    expect(lp.evaluate(req({ id: 'spiffe://example.org/ns/ops', method: 'DELETE', path: '/anything' })).rule).toBe('ingress[1].toPorts[0]');
    expect(lp.evaluate(req({ id: 'spiffe://example.org/ns/ops/sa/deployer', method: 'PATCH' })).allowed).toBe(true);
    expect(lp.evaluate(req({ id: 'spiffe://example.org/ns/opsx/sa/deployer' })).allowed).toBe(false);
    expect(lp.evaluate(req({ id: 'spiffe://other.org/ns/ops/sa/deployer' })).allowed).toBe(false);
    const td = compilePolicies([{ name: 'td', ingress: [{ fromIdentities: [{ trustDomain: 'example.org' }] }] }]).forListener('x');
    expect(td.evaluate(req({ id: 'spiffe://example.org/any/thing' })).allowed).toBe(true);
    expect(td.evaluate(req({ id: 'spiffe://example.org.evil/any' })).allowed).toBe(false);
    expect(td.evaluate(req({ id: null })).allowed).toBe(false);
  });

  it('CIDR sets honour except; IPv4-mapped IPv6 sources match IPv4 rules; IPv6 rules work', () => {
    expect(lp.evaluate(req({ srcAddr: '192.168.1.9', path: '/healthz', port: 8080 })).rule).toBe('ingress[2].toPorts[0].rules.http[0]');
    expect(lp.evaluate(req({ srcAddr: '::ffff:192.168.1.9', path: '/healthz' })).allowed).toBe(true);
    expect(lp.evaluate(req({ srcAddr: '192.168.66.9', path: '/healthz' })).allowed).toBe(false);
    expect(lp.evaluate(req({ srcAddr: '192.168.1.9', path: '/other' })).allowed).toBe(false);
    expect(lp.evaluate(req({ srcAddr: '2001:db8:1:ff::7', port: 1, method: 'X' })).rule).toBe('ingress[3]');
    expect(lp.evaluate(req({ srcAddr: '2001:db8:2::7' })).allowed).toBe(false);
    expect(lp.evaluate(req({ srcAddr: 'garbage' })).allowed).toBe(false);
  });

  it('deny wins over allow; it binds only the listeners its policy selects; a deny-only policy selects too', () => {
    const v = lp.evaluate(req({ srcAddr: '10.66.1.1', id: 'spiffe://example.org/ns/default/sa/client', path: '/public/x' }));
    expect(v).toMatchObject({ action: 'deny', policy: 'api', rule: 'ingressDeny[0]' });
    const other = set.forListener('internal');
    expect(other.selected).toBe(false);
    expect(other.evaluate(req({ srcAddr: '10.66.1.1' }))).toBe(NO_POLICY);
    const global = compilePolicies([{ name: 'blocklist', ingressDeny: [{ fromCIDR: ['10.66.0.0/16'] }] }]).forListener('internal');
    expect(global.selected).toBe(true);
    expect(global.evaluate(req({ srcAddr: '10.66.0.1' })).rule).toBe('ingressDeny[0]');
    // selected by a deny-only policy: default deny for everything else, as in Cilium
    expect(global.evaluate(req({ srcAddr: '10.1.1.1' })).rule).toBe('default-deny');
  });

  it('policies are additive', () => {
    const s = compilePolicies([
      { name: 'a', ingress: [{ fromIdentities: [{ spiffeId: 'spiffe://t/a' }] }] },
      { name: 'b', ingress: [{ fromIdentities: [{ spiffeId: 'spiffe://t/b' }] }] },
    ]).forListener('l');
    expect(s.evaluate(req({ id: 'spiffe://t/a' })).policy).toBe('a');
    expect(s.evaluate(req({ id: 'spiffe://t/b' })).policy).toBe('b');
    expect(s.evaluate(req({ id: 'spiffe://t/c' })).allowed).toBe(false);
  });

  it('admitConnection decides the L3/L4 part alone', () => {
    expect(lp.admitConnection(8080, '10.66.0.5', null).rule).toBe('ingressDeny[0]');
    expect(lp.admitConnection(8080, '10.1.1.1', parseSpiffeId('spiffe://example.org/ns/default/sa/client')).rule).toBe('ingress[0].toPorts[0]');
    expect(lp.admitConnection(9999, '10.1.1.1', parseSpiffeId('spiffe://example.org/ns/default/sa/client')).rule).toBe('default-deny');
    expect(lp.admitConnection(1234, '2001:db8:1::1', null).rule).toBe('ingress[3]');
    expect(set.forListener('internal').admitConnection(1, '10.1.1.1', null)).toBe(NO_POLICY);
  });

  it('gives a log record and a 403 for a denial', () => {
    const r = req({ id: 'spiffe://example.org/ns/default/sa/other', method: 'DELETE', path: '/x' });
    const v = lp.evaluate(r);
    expect(verdictLogRecord('public', v, r)).toEqual({
      msg: 'policy-verdict', action: 'deny', listener: 'public', policy: null, rule: 'default-deny', reason: v.reason,
      src: '10.200.0.1', port: 8080, identity: 'spiffe://example.org/ns/default/sa/other', method: 'DELETE', path: '/x', host: 'api.example.org',
    });
    expect(forbiddenResponse().status).toBe(403);
  });
});

describe('compile errors', () => {
  it('collects every problem with its field path', () => {
    const issues = checkPolicies([
      {
        name: 'Bad_Name',
        ingress: [{
          fromIdentities: [{ spiffeId: 'spiffe://Example.org/x' }, { trustDomain: 'td', pathPrefix: 'nope' }, {}],
          fromCIDR: ['10.0.0.1/8', '300.1.1.1/32'],
          fromCIDRSet: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }],
          toPorts: [{ ports: [{ port: 70000 }, { port: 'http' }, { port: 80, protocol: 'UDP' }], rules: { http: [{ method: '(', path: 'no-slash', host: '(a)\\1' }, { path: '(?=x)/' }] } }],
        }],
        ingressDeny: [{ toPorts: [{ ports: [{ port: 80 }], rules: { http: [{}] } }] }],
      },
      { name: 'dup' }, { name: 'dup' },
    ]);
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
    expect(byPath['[0].name']).toMatch(/DNS-1123/);
    expect(byPath['[0].ingress[0].fromIdentities[0].spiffeId']).toMatch(/lower case/);
    expect(byPath['[0].ingress[0].fromIdentities[1].pathPrefix']).toMatch(/start with "\/"/);
    expect(byPath['[0].ingress[0].fromIdentities[2]']).toMatch(/needs spiffeId or trustDomain/);
    expect(byPath['[0].ingress[0].fromCIDR[0]']).toMatch(/host bits/);
    expect(byPath['[0].ingress[0].fromCIDR[1]']).toMatch(/not an IPv4 or IPv6/);
    expect(byPath['[0].ingress[0].fromCIDRSet[0].except[0]']).toMatch(/not inside 10.0.0.0\/8/);
    expect(byPath['[0].ingress[0].toPorts[0].ports[0].port']).toMatch(/1..65535/);
    expect(byPath['[0].ingress[0].toPorts[0].ports[1].port']).toMatch(/named ports/);
    expect(byPath['[0].ingress[0].toPorts[0].ports[2].protocol']).toMatch(/TCP, ANY/);
    expect(byPath['[0].ingress[0].toPorts[0].rules.http[0].method']).toMatch(/invalid regular expression/);
    expect(byPath['[0].ingress[0].toPorts[0].rules.http[0].path']).toMatch(/begin with "\/"/);
    expect(byPath['[0].ingress[0].toPorts[0].rules.http[0].host']).toMatch(/invalid escape sequence: \\1 \(RE2 syntax\)/);
    expect(byPath['[0].ingress[0].toPorts[0].rules.http[1].path']).toMatch(/invalid perl operator: \(\?<?[=!] \(RE2 syntax\)/);
    expect(byPath['[0].ingressDeny[0].toPorts[0].rules']).toMatch(/not allowed in ingressDeny/);
    expect(byPath['[2].name']).toMatch(/duplicate/);
    expect(() => compilePolicies([{ name: 'x', ingress: [{ fromCIDR: ['nope'] }] }])).toThrow(PolicyCompileError);
    try { compilePolicies([{ name: 'x', ingress: [{ fromCIDR: ['nope'] }] }]); } catch (e) {
      expect((e as PolicyCompileError).code).toBe('ERR_STRATA_POLICY');
      expect((e as PolicyCompileError).issues[0]!.path).toBe('[0].ingress[0].fromCIDR[0]');
    }
  });
});

describe('l4DenyEntries', () => {
  it('extracts CIDR+port denies, folds except into prefixes, skips identity-only rules', () => {
    const set = compilePolicies([
      {
        name: 'edge',
        selector: { listeners: ['public', 'tls'] },
        ingressDeny: [
          { fromCIDR: ['203.0.113.0/24', '2001:db8:bad::/48'], toPorts: [{ ports: [{ port: 80 }, { port: 443, protocol: 'ANY' }] }] },
          { fromCIDRSet: [{ cidr: '198.51.100.0/24', except: ['198.51.100.128/25', '198.51.100.0/26'] }] },
          { fromIdentities: [{ spiffeId: 'spiffe://t/evil' }] },
        ],
        ingress: [{ fromCIDR: ['10.0.0.0/8'] }],
      },
      { name: 'close-port', ingressDeny: [{ toPorts: [{ ports: [{ port: 2222 }] }] }] },
    ]);
    const entries = l4DenyEntries(set, [{ name: 'public', port: 8080 }, { name: 'tls', port: 8443 }, { name: 'other', port: 9000 }]);
    const key = (e: { prefix: string; port?: number; protocol: string }) => `${e.prefix}:${e.port ?? '*'}:${e.protocol}`;
    expect(entries.map(key).sort()).toEqual([
      '0.0.0.0/0:2222:TCP', '198.51.100.64/26:8080:TCP', '198.51.100.64/26:8443:TCP',
      '2001:db8:bad::/48:443:ANY', '2001:db8:bad::/48:80:TCP', '203.0.113.0/24:443:ANY', '203.0.113.0/24:80:TCP', '::/0:2222:TCP',
    ].sort());
    const e = entries.find((x) => x.prefix === '2001:db8:bad::/48' && x.port === 80)!;
    expect(e).toEqual({ prefix: '2001:db8:bad::/48', family: 6, prefixLen: 48, port: 80, protocol: 'TCP', source: 'edge/ingressDeny[0]' });
    // without listeners, a portless deny has no port
    expect(l4DenyEntries(set).filter((x) => x.source === 'edge/ingressDeny[1]')).toEqual([
      { prefix: '198.51.100.64/26', family: 4, prefixLen: 26, protocol: 'TCP', source: 'edge/ingressDeny[1]' },
    ]);
    expect(l4DenyEntries(compilePolicies([{ name: 'x', ingress: [{}] }]))).toEqual([]);
  });
});

describe('addresses and prefixes', () => {
  it('parses IPv4, IPv6 and IPv4-mapped without allocation-prone paths, rejecting junk', () => {
    const w = new Uint32Array(4);
    const ok: [string, number, number[]][] = [
      ['10.1.2.3', 4, [0, 0, 0xffff, 0x0a010203]], ['::ffff:10.1.2.3', 4, [0, 0, 0xffff, 0x0a010203]], ['::', 6, [0, 0, 0, 0]],
      ['::1', 6, [0, 0, 0, 1]], ['2001:db8::1', 6, [0x20010db8, 0, 0, 1]], ['1:2:3:4:5:6:7:8', 6, [0x10002, 0x30004, 0x50006, 0x70008]],
      ['fe80::', 6, [0xfe800000, 0, 0, 0]], ['1:2:3:4:5:6:1.2.3.4', 6, [0x10002, 0x30004, 0x50006, 0x01020304]],
    ];
    for (const [a, fam, words] of ok) { expect(parseAddrInto(a, w), a).toBe(fam); expect([...w], a).toEqual(words); }
    for (const a of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '1:::2', ':1', '1:', '1:2:3:4:5:6:7:8:9', '12345::', 'g::1', '::ffff:1.2.3', '1::2::3'])
      expect(parseAddrInto(a, w), a).toBe(0);
  });

  it('subtracts prefixes into a minimal cover', () => {
    const p = (s: string) => parsePrefix(s) as Prefix;
    expect(subtractPrefixes(p('10.0.0.0/8'), [p('10.0.0.0/9')]).map((x) => x.text)).toEqual(['10.128.0.0/9']);
    expect(subtractPrefixes(p('10.0.0.0/30'), [p('10.0.0.1/32')]).map((x) => x.text)).toEqual(['10.0.0.0/32', '10.0.0.2/31']);
    expect(subtractPrefixes(p('10.0.0.0/8'), [p('10.0.0.0/8')])).toEqual([]);
    expect(subtractPrefixes(p('2001:db8::/32'), [p('2001:db8:8000::/33')]).map((x) => x.text)).toEqual(['2001:db8::/33']);
    const w = new Uint32Array(4);
    expect(prefixContains(p('0.0.0.0/0'), parseAddrInto('1.2.3.4', w), w)).toBe(true);
    expect(prefixContains(p('0.0.0.0/0'), parseAddrInto('::1', w), w)).toBe(false);
    expect(p('2001:0db8:0000::/48').text).toBe('2001:db8::/48');
  });
});
