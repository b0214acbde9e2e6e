// Gateway API HTTPRoute precedence and filters, as a table.
import { describe, it, expect } from 'vitest';
import { Router, splitTarget, normaliseHost, type RouteRequest } from '../src/l7/proxy/router.js';
import { applyHeaderFilter, modifyPath, redirectTarget, pickBackend, headerGet } from '../src/l7/proxy/filters.js';
import type { HTTPRoute } from '../src/l7/proxy/types.js';
import { Prng } from '../src/util/prng.js';

function req(method: string, target: string, host = 'example.com', headers: Record<string, string> = {}): RouteRequest {
  const { path, query } = splitTarget(target);
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, path, query, host: normaliseHost(host), header: (n) => lower[n] };
}

/** Each rule's name tells which rule won. */
function r(name: string, rules: HTTPRoute['rules'], extra: Partial<HTTPRoute> = {}): HTTPRoute {
  return { name, rules, ...extra };
}

const routes: HTTPRoute[] = [
  r('a', [
    { name: 'prefix-root', matches: [{ path: { type: 'PathPrefix', value: '/' } }] },
    { name: 'prefix-foo', matches: [{ path: { type: 'PathPrefix', value: '/foo' } }] },
    { name: 'prefix-foo-bar', matches: [{ path: { type: 'PathPrefix', value: '/foo/bar/' } }] },
    { name: 'exact-foo', matches: [{ path: { type: 'Exact', value: '/foo' } }] },
    { name: 'regex-api', matches: [{ path: { type: 'RegularExpression', value: '/api/v[0-9]+/.*' } }] },
    { name: 'prefix-api-method', matches: [{ path: { type: 'PathPrefix', value: '/api' }, method: 'POST' }] },
    { name: 'prefix-api', matches: [{ path: { type: 'PathPrefix', value: '/api' } }] },
    { name: 'hdr2', matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ name: 'X-A', value: '1' }, { name: 'x-b', value: '2' }] }] },
    { name: 'hdr1', matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ name: 'x-a', value: '1' }] }] },
    { name: 'hdr-re', matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ name: 'x-c', type: 'RegularExpression', value: 'v[0-9]' }] }] },
    { name: 'q1', matches: [{ path: { type: 'PathPrefix', value: '/q' }, queryParams: [{ name: 'env', value: 'canary' }] }] },
    { name: 'q-none', matches: [{ path: { type: 'PathPrefix', value: '/q' } }] },
    { name: 'or', matches: [{ path: { type: 'Exact', value: '/or1' } }, { path: { type: 'Exact', value: '/or2' }, method: 'GET' }] },
  ]),
  r('z-old', [{ name: 'tie-old', matches: [{ path: { type: 'PathPrefix', value: '/tie' } }] }], { creationTimestamp: 1 }),
  r('b-new', [{ name: 'tie-new', matches: [{ path: { type: 'PathPrefix', value: '/tie' } }] }], { creationTimestamp: 2 }),
  r('y', [{ name: 'tie2-y', matches: [{ path: { type: 'PathPrefix', value: '/tie2' } }] }], { creationTimestamp: 5 }),
  r('x', [{ name: 'tie2-x', matches: [{ path: { type: 'PathPrefix', value: '/tie2' } }] }], { creationTimestamp: 5 }),
  r('host-exact', [{ name: 'host-exact', matches: [{ path: { type: 'PathPrefix', value: '/only-exact' } }] }], { hostnames: ['a.example.org'] }),
  r('host-wild', [{ name: 'host-wild' }], { hostnames: ['*.example.org'] }),
  r('host-wild-long', [{ name: 'host-wild-long' }], { hostnames: ['*.b.example.org'] }),
  r('only-host', [{ name: 'only-host', matches: [{ path: { type: 'Exact', value: '/x' } }] }], { hostnames: ['only.test'] }),
];

const table: [string, string, string, Record<string, string>, string | null][] = [
  // method, target, host, headers, expected rule
  ['GET', '/', 'example.com', {}, 'prefix-root'],
  ['GET', '/foo', 'example.com', {}, 'exact-foo'], // Exact beats any prefix
  ['GET', '/foo/', 'example.com', {}, 'prefix-foo'],
  ['GET', '/foo/x', 'example.com', {}, 'prefix-foo'],
  ['GET', '/foobar', 'example.com', {}, 'prefix-root'], // element-wise: /foo does not match /foobar
  ['GET', '/foo/bar', 'example.com', {}, 'prefix-foo-bar'], // trailing slash on prefix ignored, longest wins
  ['GET', '/foo/bar/baz', 'example.com', {}, 'prefix-foo-bar'],
  ['GET', '/foo/barn', 'example.com', {}, 'prefix-foo'],
  ['GET', '/foo?x=1', 'example.com', {}, 'exact-foo'], // query is not part of the path
  ['GET', '/api/v2/users', 'example.com', {}, 'regex-api'], // regex between Exact and PathPrefix (Envoy Gateway)
  ['POST', '/api/v2/users', 'example.com', {}, 'regex-api'],
  ['POST', '/api/vx', 'example.com', {}, 'prefix-api-method'], // method beats no method at equal prefix
  ['GET', '/api/vx', 'example.com', {}, 'prefix-api'],
  ['GET', '/h', 'example.com', { 'x-a': '1', 'x-b': '2' }, 'hdr2'], // more header matches win
  ['GET', '/h', 'example.com', { 'x-a': '1', 'x-b': '3' }, 'hdr1'],
  ['GET', '/h', 'example.com', { 'x-c': 'v7' }, 'hdr-re'],
  ['GET', '/h', 'example.com', { 'x-c': 'v77' }, 'prefix-root'], // regex must match the whole value
  ['GET', '/q?env=canary', 'example.com', {}, 'q1'],
  ['GET', '/q?a=b&env=canary', 'example.com', {}, 'q1'],
  ['GET', '/q?env=prod', 'example.com', {}, 'q-none'],
  ['GET', '/or1', 'example.com', {}, 'or'], // matches ORed
  ['GET', '/or2', 'example.com', {}, 'or'],
  ['POST', '/or2', 'example.com', {}, 'prefix-root'], // conditions ANDed
  ['GET', '/tie', 'example.com', {}, 'tie-old'], // older route wins
  ['GET', '/tie2', 'example.com', {}, 'tie2-x'], // same age: namespace/name alphabetical
  ['GET', '/only-exact', 'A.Example.Org:8080', {}, 'host-exact'], // exact hostname first
  ['GET', '/other', 'a.example.org', {}, 'host-wild'], // falls back to the wildcard
  ['GET', '/', 'c.b.example.org', {}, 'host-wild-long'], // longer wildcard first
  ['GET', '/', 'deep.c.example.org', {}, 'host-wild'], // wildcard is a suffix match
  ['GET', '/', 'example.org', {}, 'prefix-root'], // *.example.org does not match example.org
  ['GET', '/x', 'only.test', {}, 'only-host'],
  ['GET', '/y', 'only.test', {}, 'prefix-root'],
];

describe('router precedence (Gateway API)', () => {
  const router = new Router(routes);
  for (const [m, t, h, hd, want] of table) {
    it(`${m} ${h}${t} ${JSON.stringify(hd)} -> ${want}`, () => {
      const got = router.match(req(m, t, h, hd));
      expect(got?.rule.name ?? null).toBe(want);
    });
  }
  it('answers null (404) when nothing matches', () => {
    const r2 = new Router([r('n', [{ name: 'n', matches: [{ path: { type: 'Exact', value: '/a' } }] }])]);
    expect(r2.match(req('GET', '/b'))).toBeNull();
    expect(r2.match(req('GET', '/a'))?.rule.name).toBe('n');
  });
  it('reports the matched prefix for ReplacePrefixMatch', () => {
    expect(router.match(req('GET', '/foo/bar/baz'))?.matchedPrefix).toBe('/foo/bar');
    expect(router.match(req('GET', '/zzz'))?.matchedPrefix).toBe('');
    expect(router.match(req('GET', '/foo'))?.matchedPrefix).toBeNull();
  });
  it('regular expressions: alternation and quantifiers on the leading text', () => {
    const rr = new Router([r('re', [
      { name: 'alt', matches: [{ path: { type: 'RegularExpression', value: '/a/x|/b/x' } }] },
      { name: 'q', matches: [{ path: { type: 'RegularExpression', value: '/cd?/y' } }] },
    ])]);
    expect(rr.match(req('GET', '/b/x'))?.rule.name).toBe('alt');
    expect(rr.match(req('GET', '/a/x'))?.rule.name).toBe('alt');
    expect(rr.match(req('GET', '/c/y'))?.rule.name).toBe('q');
    expect(rr.match(req('GET', '/cd/y'))?.rule.name).toBe('q');
    expect(rr.match(req('GET', '/cdd/y'))).toBeNull();
  });
  it('rejects invalid routes', () => {
    expect(() => new Router([r('bad', [{ matches: [{ path: { type: 'RegularExpression', value: '(' } }] }])])).toThrow(/regular expression/);
    expect(() => new Router([r('bad', [{ matches: [{ path: { type: 'PathPrefix', value: 'x' } }] }])])).toThrow(/start with/);
    expect(() => new Router([r('bad', [{}], { hostnames: ['a.*.com'] })])).toThrow(/wildcard/);
  });
});

describe('filters', () => {
  it('header modifier: set, add, remove', () => {
    const h = ['Host', 'a', 'X-Keep', '1', 'x-set', 'old', 'X-Set', 'old2', 'X-Add', 'v1', 'X-Gone', 'z'];
    applyHeaderFilter(h, { set: [{ name: 'X-Set', value: 'new' }], add: [{ name: 'X-Add', value: 'v2' }, { name: 'X-New', value: 'n' }], remove: ['x-gone'] });
    expect(h).toEqual(['Host', 'a', 'X-Keep', '1', 'X-Add', 'v1,v2', 'X-Set', 'new', 'X-New', 'n']);
    expect(headerGet(h, 'x-set')).toBe('new');
  });
  it('URL rewrite: ReplaceFullPath and ReplacePrefixMatch', () => {
    expect(modifyPath('/foo/bar', { type: 'ReplaceFullPath', replaceFullPath: '/x' }, '/foo')).toBe('/x');
    const p = { type: 'ReplacePrefixMatch', replacePrefixMatch: '/xyz' } as const;
    expect(modifyPath('/foo/bar', p, '/foo')).toBe('/xyz/bar');
    expect(modifyPath('/foo', p, '/foo')).toBe('/xyz');
    const root = { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } as const;
    expect(modifyPath('/foo/bar', root, '/foo')).toBe('/bar');
    expect(modifyPath('/foo', root, '/foo')).toBe('/');
    expect(modifyPath('/a/b', { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' }, '')).toBe('/v2/a/b');
  });
  it('redirect: scheme, host, port, path, status', () => {
    const base = { scheme: 'http' as const, host: 'a.com', port: 8080, path: '/foo/x', query: 'q=1' };
    expect(redirectTarget(base, {}, '/foo')).toEqual({ status: 302, location: 'http://a.com:8080/foo/x?q=1' });
    expect(redirectTarget(base, { scheme: 'https', statusCode: 301 }, '/foo')).toEqual({ status: 301, location: 'https://a.com/foo/x?q=1' });
    expect(redirectTarget(base, { hostname: 'b.com', port: 80 }, '/foo').location).toBe('http://b.com/foo/x?q=1');
    expect(redirectTarget(base, { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/bar' } }, '/foo').location).toBe('http://a.com:8080/bar/x?q=1');
  });
  it('weighted backends: split follows weights; all-zero gives null (500)', () => {
    const rng = new Prng(42);
    const refs = [{ name: 'stable', weight: 90 }, { name: 'canary', weight: 10 }, { name: 'off', weight: 0 }];
    const n = 20000;
    const count: Record<string, number> = { stable: 0, canary: 0, off: 0 };
    for (let i = 0; i < n; i++) count[pickBackend(refs, rng.float())!.name]!++;
    expect(count.off).toBe(0);
    expect(count.canary! / n).toBeGreaterThan(0.09);
    expect(count.canary! / n).toBeLessThan(0.11);
    expect(pickBackend([{ name: 'a', weight: 0 }, { name: 'b', weight: 0 }], 0.5)).toBeNull();
    expect(pickBackend([{ name: 'a' }], 0.99)?.name).toBe('a');
    // blue/green: all weight on one side
    for (let i = 0; i < 100; i++) expect(pickBackend([{ name: 'blue', weight: 0 }, { name: 'green', weight: 1 }], rng.float())?.name).toBe('green');
  });
});
