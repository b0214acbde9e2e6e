// Load balancing, outlier detection, circuit breakers and the retry budget on
// seeded randomness and a virtual clock.
import { describe, it, expect } from 'vitest';
import { Host, HostSet } from '../src/l7/proxy/hosts.js';
import { createLoadBalancer, type LbPolicy } from '../src/l7/proxy/lb.js';
import { OutlierDetector } from '../src/l7/proxy/outlier.js';
import { CircuitBreakers, retryBackoff } from '../src/l7/proxy/breakers.js';
import { Prng } from '../src/util/prng.js';
import { VirtualClock } from '../src/util/clock.js';

function hosts(n: number, weight = 1): Host[] {
  return Array.from({ length: n }, (_, i) => new Host(`10.0.0.${i + 1}`, 8080, weight));
}
function counts(lb: { pick(k: string | null): Host | null }, n: number, key?: (i: number) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i < n; i++) { const h = lb.pick(key ? key(i) : null)!; m.set(h.id, (m.get(h.id) ?? 0) + 1); }
  return m;
}

describe('load balancers', () => {
  it('round robin visits hosts in turn', () => {
    const set = new HostSet(hosts(3));
    const lb = createLoadBalancer('ROUND_ROBIN', set, new Prng(1));
    expect(Array.from({ length: 6 }, () => lb.pick(null)!.address)).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.3']);
  });

  for (const policy of ['RANDOM', 'RING_HASH', 'MAGLEV'] as LbPolicy[]) {
    it(`${policy} spreads load evenly (within 15%)`, () => {
      const set = new HostSet(hosts(4));
      const lb = createLoadBalancer(policy, set, new Prng(7));
      const n = 40000;
      const c = counts(lb, n, policy === 'RANDOM' ? undefined : (i) => `user-${i}`);
      expect(c.size).toBe(4);
      for (const v of c.values()) { expect(v).toBeGreaterThan((n / 4) * 0.85); expect(v).toBeLessThan((n / 4) * 1.15); }
    });
  }

  it('least request (P2C) prefers hosts with fewer requests in flight', () => {
    const hs = hosts(4);
    const set = new HostSet(hs);
    const lb = createLoadBalancer('LEAST_REQUEST', set, new Prng(3));
    hs[0]!.active = 100; // a slow host
    const c = counts(lb, 10000);
    // With two choices the busy host only wins when sampled twice: ≈ 1/16.
    expect(c.get(hs[0]!.id) ?? 0).toBeLessThan(10000 * 0.1);
    expect(c.get(hs[1]!.id)!).toBeGreaterThan(10000 * 0.25);
  });

  for (const policy of ['RING_HASH', 'MAGLEV'] as LbPolicy[]) {
    it(`${policy}: same key same host; removing a host moves only (nearly only) its keys`, () => {
      const hs = hosts(5);
      const set = new HostSet(hs, 0);
      const lb = createLoadBalancer(policy, set, new Prng(9));
      const keys = Array.from({ length: 5000 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
      const before = keys.map((k) => lb.pick(k)!);
      expect(keys.map((k) => lb.pick(k)!)).toEqual(before);
      const victim = hs[2]!;
      set.remove(victim);
      let movedOthers = 0;
      keys.forEach((k, i) => {
        const h = lb.pick(k)!;
        expect(h).not.toBe(victim);
        if (before[i] !== victim && h !== before[i]) movedOthers++;
      });
      // Ring hash: exactly zero. Maglev: a small disruption is expected (paper §3.4).
      if (policy === 'RING_HASH') expect(movedOthers).toBe(0);
      else expect(movedOthers / keys.length).toBeLessThan(0.05);
    });
  }

  it('weighted ring hash and maglev follow weights', () => {
    for (const policy of ['RING_HASH', 'MAGLEV'] as LbPolicy[]) {
      const hs = [new Host('10.0.0.1', 80, 1), new Host('10.0.0.2', 80, 3)];
      const lb = createLoadBalancer(policy, new HostSet(hs), new Prng(1));
      const c = counts(lb, 20000, (i) => `k${i}`);
      const share = c.get(hs[1]!.id)! / 20000;
      expect(share).toBeGreaterThan(0.68);
      expect(share).toBeLessThan(0.82);
    }
  });

  it('ejected hosts are skipped; panic threshold uses all hosts', () => {
    const hs = hosts(4);
    const set = new HostSet(hs);
    const lb = createLoadBalancer('ROUND_ROBIN', set, new Prng(1));
    hs[1]!.ejected = true; set.refresh();
    expect(new Set(Array.from({ length: 9 }, () => lb.pick(null)!.id)).has(hs[1]!.id)).toBe(false);
    hs[0]!.ejected = true; hs[2]!.ejected = true; set.refresh(); // 25% healthy < 50%: panic
    expect(new Set(Array.from({ length: 8 }, () => lb.pick(null)!.id)).size).toBe(4);
  });
});

describe('outlier detection (Envoy defaults) on a virtual clock', () => {
  it('ejects after 5 consecutive 5xx, returns after 30 s at the next sweep, and doubles the second time', () => {
    const clock = new VirtualClock(0);
    const hs = hosts(10);
    const set = new HostSet(hs);
    const od = new OutlierDetector(set, clock.now());
    const bad = hs[3]!;
    for (let i = 0; i < 4; i++) od.report(bad, 503, clock.now());
    expect(bad.ejected).toBe(false);
    od.report(bad, 200, clock.now()); // a success resets the run
    for (let i = 0; i < 4; i++) od.report(bad, 500, clock.now());
    expect(bad.ejected).toBe(false);
    od.report(bad, 0, clock.now()); // connect failure counts as 5xx
    expect(bad.ejected).toBe(true);
    expect(set.available).not.toContain(bad);
    clock.set(29_000); od.poll(clock.now());
    expect(bad.ejected).toBe(true);
    clock.set(30_000); od.poll(clock.now());
    expect(bad.ejected).toBe(false);
    expect(set.available).toContain(bad);
    // Second ejection lasts 2 × 30 s.
    for (let i = 0; i < 5; i++) od.report(bad, 502, clock.now());
    expect(bad.ejected).toBe(true);
    clock.set(80_000); od.poll(clock.now());
    expect(bad.ejected).toBe(true);
    clock.set(90_000); od.poll(clock.now());
    expect(bad.ejected).toBe(false);
  });

  it('max_ejection_percent 10 bounds ejections, but one host can always be ejected', () => {
    const hs = hosts(10);
    const set = new HostSet(hs);
    const od = new OutlierDetector(set, 0);
    for (const h of hs.slice(0, 3)) for (let i = 0; i < 5; i++) od.report(h, 503, 0);
    expect(set.ejectedCount).toBe(1);
    expect(od.overflowed).toBeGreaterThan(0);
    const small = hosts(2);
    const set2 = new HostSet(small, 0);
    const od2 = new OutlierDetector(set2, 0);
    for (let i = 0; i < 5; i++) od2.report(small[0]!, 503, 0);
    expect(small[0]!.ejected).toBe(true);
  });
});

describe('circuit breakers and retry budget', () => {
  it('overflows requests past max_requests', () => {
    const cb = new CircuitBreakers({ maxRequests: 2 });
    expect(cb.tryRequest()).toBe(true);
    expect(cb.tryRequest()).toBe(true);
    expect(cb.tryRequest()).toBe(false);
    expect(cb.overflow.requests).toBe(1);
    cb.releaseRequest();
    expect(cb.tryRequest()).toBe(true);
  });
  it('defaults are Envoy\'s', () => {
    const cb = new CircuitBreakers();
    expect([cb.maxConnections, cb.maxPendingRequests, cb.maxRequests, cb.maxRetries]).toEqual([1024, 1024, 1024, 3]);
    expect(cb.budget).toEqual({ budgetPercent: 20, minRetryConcurrency: 3 });
  });
  it('retry budget: at least 3 concurrent retries, 20% of active requests beyond that', () => {
    const cb = new CircuitBreakers();
    for (let i = 0; i < 3; i++) expect(cb.tryRetry()).toBe(true);
    expect(cb.tryRetry()).toBe(false);
    for (let i = 0; i < 50; i++) cb.tryRequest();
    expect(cb.retryLimit()).toBe(10);
    for (let i = 0; i < 7; i++) expect(cb.tryRetry()).toBe(true);
    expect(cb.tryRetry()).toBe(false);
    const nob = new CircuitBreakers({ retryBudget: null, maxRetries: 1 });
    expect(nob.tryRetry()).toBe(true);
    expect(nob.tryRetry()).toBe(false);
  });
  it('backoff is fully jittered and capped at 250 ms', () => {
    const rng = new Prng(5);
    for (let n = 1; n < 10; n++) {
      for (let i = 0; i < 200; i++) {
        const b = retryBackoff(n, rng);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThan(Math.min(25 * (2 ** n - 1), 250));
      }
    }
  });
});

describe('cluster hash keys and the config adapter', () => {
  it('hashPolicy: first header present wins, else the client address; same key, same host', async () => {
    const { Cluster } = await import('../src/l7/proxy/cluster.js');
    const { KernelTransport } = await import('../src/l7/transport/kernel.js');
    const c = new Cluster({
      name: 'c', transport: new KernelTransport(), lbPolicy: 'MAGLEV', rng: new Prng(3),
      endpoints: Array.from({ length: 5 }, (_, i) => ({ address: '10.9.0.1', port: 9000 + i })),
      hashPolicy: [{ header: 'X-Session' }, { sourceIp: true }],
    });
    const hdr = (h: Record<string, string>) => (n: string) => h[n];
    expect(c.hashKey(hdr({ 'x-session': 'abc' }), '10.0.0.1')).toBe('abc');
    expect(c.hashKey(hdr({}), '10.0.0.1')).toBe('10.0.0.1');
    const k = c.hashKey(hdr({ 'x-session': 'user-42' }), '10.0.0.7');
    const first = c.pick(k, 0);
    for (let i = 0; i < 20; i++) expect(c.pick(k, i)).toBe(first);
    c.close();
  });

  it('routes and clusters from a validated config file', async () => {
    const { parseConfig } = await import('../src/config/index.js');
    const { routesFor, clusterFromConfig } = await import('../src/l7/proxy/from-config.js');
    const { KernelTransport } = await import('../src/l7/transport/kernel.js');
    const { Router } = await import('../src/l7/proxy/router.js');
    const text = [
      'listeners:', '  - { name: a, port: 8080 }', '  - { name: b, port: 8081 }',
      'clusters:', '  - name: web', '    endpoints: [127.0.0.1:1]', '    lbPolicy: ring_hash', '    hashPolicy: [{ header: x-user }]',
      'routes:',
      '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: ra }', '    spec:',
      '      parentRefs: [{ name: a }]', '      hostnames: ["*.example.com"]', '      rules:',
      '        - matches: [{ path: { type: Exact, value: /x } }]', '          backendRefs: [{ name: web, weight: 3 }]',
      '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: rb }', '    spec:',
      '      parentRefs: [{ name: b }]', '      rules:', '        - backendRefs: [{ name: web }]', '',
    ].join('\n');
    const r = parseConfig(text, 'inline.yaml');
    expect(r.errors).toEqual([]);
    const cfg = r.config!;
    const ra = routesFor(cfg, 'a');
    expect(ra.map((x) => x.name)).toEqual(['ra']);
    expect(ra[0]!.hostnames).toEqual(['*.example.com']);
    expect(ra[0]!.rules[0]!.backendRefs).toEqual([{ name: 'web', weight: 3 }]);
    const router = new Router(ra);
    const req = (host: string, path: string) => ({ method: 'GET', host, path, query: '', header: () => undefined });
    expect(router.match(req('a.example.com', '/x'))?.route.name).toBe('ra');
    expect(router.match(req('a.example.com', '/y'))).toBeNull();
    expect(routesFor(cfg, 'b').map((x) => x.name)).toEqual(['rb']);
    const c = await clusterFromConfig(cfg.clusters[0]!, { transportFor: async () => new KernelTransport() });
    expect(c.lb.policy).toBe('RING_HASH');
    expect(c.hashPolicy).toEqual([{ header: 'x-user' }]);
    expect(c.breakers.maxRequests).toBe(1024);
    expect(c.outlier?.opts.consecutive5xx).toBe(5);
    expect(c.retry.statusCodes).toEqual(expect.arrayContaining([502, 503, 504]));
    c.close();
  });
});
