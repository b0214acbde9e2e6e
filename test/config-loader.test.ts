// The YAML config loader: the shipped example validates (also with real TLS
// files), defaults are Envoy's and Gateway API's, and every mistake is
// reported, all at once, as file:line: field: message.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseConfig, loadConfig, checkConfig, runCheck, parseDuration, type ProxyConfig } from '../src/config/index.js';
import { ConfigError } from '../src/util/errors.js';
import { main as certs } from '../src/cli/certs.js';
import { compilePolicies } from '../src/l7/policy/index.js';

const EXAMPLE = resolve('examples/proxy.yaml');
const quiet = { write: () => true };

/** Lines of issues for YAML text (as if read from proxy.yaml). */
function issues(yaml: string): string[] {
  const r = parseConfig(yaml, 'proxy.yaml');
  return r.errors.map((e) => `proxy.yaml:${e.line}: ${e.field ? `${e.field}: ` : ''}${e.message}`);
}

const MIN = `
listeners:
  - name: public
    port: 8080
clusters:
  - name: web
    endpoints: ["10.0.0.1:80"]
`;

/** MIN plus one HTTPRoute named r with the given rules (YAML, indented under `rules:`). */
function routeYaml(rules: string, parentRef: string): string {
  return `${MIN}routes:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: r }
    spec:
      parentRefs: [${parentRef}]
      rules:
${rules}`;
}

describe('the example config', () => {
  let cfg: ProxyConfig;
  beforeAll(() => {
    const r = parseConfig(readFileSync(EXAMPLE, 'utf8'), EXAMPLE);
    expect(r.errors).toEqual([]);
    cfg = r.config!;
  });

  it('has every section, typed', () => {
    expect(cfg.admin).toEqual({ address: '127.0.0.1', port: 9901 });
    expect(cfg.logging).toEqual({ level: 'info', format: 'json', path: 'stderr', accessLog: { enabled: true, path: 'stdout' }, showQueryStrings: false });
    expect(cfg.listeners.map((l) => [l.name, l.port, l.transport, l.protocol, l.tls])).toEqual([
      ['public', 8080, 'afxdp', 'HTTP', null], ['secure', 8443, 'kernel', 'HTTPS', 'server-mtls'],
    ]);
    expect(cfg.tls[0]).toEqual({
      name: 'server-mtls', certFile: resolve('examples/certs/server/cert.pem'), keyFile: resolve('examples/certs/server/key.pem'),
      caFile: resolve('examples/certs/ca/bundle.pem'), requireClientCert: true, trustDomains: ['example.org'], watch: true,
    });
    expect(cfg.routes.map((r) => `${r.metadata.namespace}/${r.metadata.name}`)).toEqual(['default/web', 'billing/payments']);
    expect(cfg.policies.map((p) => p.name)).toEqual(['secure-api', 'public-edge']);
    expect(compilePolicies(cfg.policies).forListener('secure').selected).toBe(true);
  });

  it('applies Envoy defaults to clusters that do not set them', () => {
    const v2 = cfg.clusters.find((c) => c.name === 'web-v2')!;
    expect(v2).toMatchObject({
      transport: 'kernel', lbPolicy: 'round_robin', connectTimeoutMs: 5000,
      endpoints: [{ address: '10.201.0.1', port: 8083, weight: 1 }],
      circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
      outlierDetection: { enabled: true, consecutive5xx: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 },
      retryPolicy: { retryOn: { connectFailure: true, reset: false, statusCodes: [502, 503, 504] }, numRetries: 1, perTryTimeoutMs: 0, backoff: { baseIntervalMs: 25, maxIntervalMs: 250 } },
      retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 },
    });
    const v1 = cfg.clusters.find((c) => c.name === 'web-v1')!;
    expect(v1.retryPolicy).toEqual({ retryOn: { connectFailure: true, reset: true, statusCodes: [502, 503, 504] }, numRetries: 2, perTryTimeoutMs: 3000, backoff: { baseIntervalMs: 25, maxIntervalMs: 250 } });
    expect(cfg.clusters.find((c) => c.name === 'sessions')!.hashPolicy).toEqual([{ header: 'x-session-id' }, { sourceIp: true }]);
  });

  it('keeps HTTPRoutes in Gateway API shape with defaults', () => {
    const web = cfg.routes[0]!;
    expect(web.apiVersion).toBe('gateway.networking.k8s.io/v1');
    expect(web.spec.parentRefs).toEqual([{ name: 'public', port: null }, { name: 'secure', port: null }]);
    expect(web.spec.rules[0]!.backendRefs.map((b) => [b.name, b.weight])).toEqual([['web-v1', 90], ['web-v2', 10]]);
    expect(web.spec.rules[0]!.timeouts).toEqual({ requestMs: 15_000, backendRequestMs: 5_000 });
    expect(web.spec.rules[1]!.timeouts).toEqual({ requestMs: 15_000, backendRequestMs: 0 });
    expect(web.spec.rules[1]!.matches[0]).toEqual({
      path: { type: 'RegularExpression', value: '/api/v[0-9]+/.*' }, method: 'POST',
      headers: [{ type: 'Exact', name: 'x-api-version', value: '2' }], queryParams: [],
    });
    expect(web.spec.rules[0]!.filters[1]).toEqual({ type: 'RequestMirror', requestMirror: { backendRef: { name: 'audit', port: null }, percent: 5 } });
    expect(web.spec.rules[2]!.filters[0]).toEqual({
      type: 'RequestRedirect', requestRedirect: { scheme: 'https', hostname: null, port: null, statusCode: 301, path: { type: 'ReplaceFullPath', replaceFullPath: '/new' } },
    });
  });

  it('passes --check with the TLS files that `strata certs dev` writes, and fails without them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-config-'));
    try {
      copyFileSync(EXAMPLE, join(dir, 'proxy.yaml'));
      const missing = checkConfig(join(dir, 'proxy.yaml'));
      expect(missing.ok).toBe(false);
      expect(missing.lines[0]).toMatch(new RegExp(`^${dir}/proxy.yaml:\\d+: tls\\[0\\]\\.cert: certificate .*ENOENT`));
      expect(await certs(['dev', '--out', join(dir, 'certs')], quiet, quiet)).toBe(0);
      const ok = checkConfig(join(dir, 'proxy.yaml'));
      expect(ok.lines).toEqual([]);
      expect(ok.ok).toBe(true);
      const printed: string[] = [];
      expect(runCheck(join(dir, 'proxy.yaml'), { write: (x: string) => printed.push(x) }, quiet)).toBe(0);
      expect(printed).toEqual([`${join(dir, 'proxy.yaml')}: OK (2 listeners, 2 routes, 5 clusters, 2 tls, 2 policies)\n`]);
      writeFileSync(join(dir, 'bad.yaml'), 'listeners: []\n');
      const errs: string[] = [];
      expect(runCheck(join(dir, 'bad.yaml'), quiet, { write: (x: string) => errs.push(x) })).toBe(1);
      expect(errs).toEqual([`${join(dir, 'bad.yaml')}:1: listeners: must have at least 1 item\n`, `${join(dir, 'bad.yaml')}: 1 error\n`]);
      expect(loadConfig(join(dir, 'proxy.yaml')).tls[1]!.certFile).toBe(join(dir, 'certs/client/cert.pem'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('error reporting', () => {
  it('names file, line and field, as in the issue', () => {
    const yaml = `listeners:
  - name: public
    port: 8080
clusters:
  - name: web
    endpoints: ["10.0.0.1:80"]
routes:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: web }
    spec:
      parentRefs: [{ name: public }]
      rules:
        - backendRefs: [{ name: web }]
        - matches:
            - path: { type: Prefix, value: /a }
          backendRefs: [{ name: web }]
`;
    expect(issues(yaml)).toEqual(['proxy.yaml:16: routes[0].spec.rules[1].matches[0].path.type: must be one of Exact, PathPrefix, RegularExpression']);
  });

  it('collects every error in one pass, in line order', () => {
    const yaml = `listeners:
  - name: public
    port: 8080
    transprt: kernel
  - name: public
    port: 99999
clusters:
  - name: web
    endpoints: ["10.0.0.1:80", "db.local:5432"]
    lbPolicy: fastest
    circuitBreakers: { maxConnections: -1 }
    outlierDetection: { interval: 10 }
  - name: xdp
    transport: afxdp
    endpoints: ["db.local:5432"]
routes:
  - apiVersion: gateway.networking.k8s.io/v1beta1
    kind: HTTPRoute
    metadata: { name: r }
    spec:
      parentRefs: [{ name: nope }]
      hostnames: ["10.0.0.1"]
      rules:
        - matches:
            - path: { type: Exact, value: "/a//b" }
              headers: [{ name: "bad name", value: x }]
          filters:
            - type: RequestRedirect
              requestRedirect: { statusCode: 404, hostname: "*.x.org" }
            - type: URLRewrite
              urlRewrite: {}
        - backendRefs: [{ name: missing, weight: 2000000 }]
          timeouts: { request: 1s, backendRequest: 2s }
policies:
  - name: p
    selector: { listeners: [ghost] }
    ingress:
      - fromCIDR: [10.0.0.1/8]
bogus: 1
`;
    expect(issues(yaml)).toEqual([
      'proxy.yaml:4: listeners[0].transprt: unknown field (expected one of name, address, port, transport, protocol, tls, timeouts, maxHeaderBytes, maxConnections, maxPipelined, outputHighWaterMark, upgrade, escapedSlashes)',
      'proxy.yaml:5: listeners[1].name: duplicate listener name "public" (first at listeners[0])',
      'proxy.yaml:6: listeners[1].port: must be in 1..65535',
      'proxy.yaml:10: clusters[0].lbPolicy: must be one of round_robin, least_request, random, ring_hash, maglev',
      'proxy.yaml:11: clusters[0].circuitBreakers.maxConnections: must be in 1..1000000000',
      'proxy.yaml:12: clusters[0].outlierDetection.interval: must be a duration like "10s", "1m30s" or "250ms" (a bare number has no unit)',
      'proxy.yaml:15: clusters[1].endpoints[0]: must be an IP address on transport afxdp (no resolver in the userspace stack)',
      'proxy.yaml:17: routes[0].apiVersion: must be one of gateway.networking.k8s.io/v1',
      'proxy.yaml:21: routes[0].spec.parentRefs[0].name: no listener named "nope" (have: public)',
      'proxy.yaml:22: routes[0].spec.hostnames[0]: must be a lower-case DNS name, optionally with a leading "*." (IP addresses are not allowed)',
      'proxy.yaml:25: routes[0].spec.rules[0].matches[0].path.value: must not contain "//"',
      'proxy.yaml:26: routes[0].spec.rules[0].matches[0].headers[0].name: must be a valid header/parameter name',
      'proxy.yaml:28: routes[0].spec.rules[0].filters: RequestRedirect and URLRewrite cannot be used together',
      'proxy.yaml:29: routes[0].spec.rules[0].filters[0].requestRedirect.statusCode: must be one of 301, 302, 303, 307, 308',
      'proxy.yaml:29: routes[0].spec.rules[0].filters[0].requestRedirect.hostname: must be a lower-case DNS name without wildcard',
      'proxy.yaml:32: routes[0].spec.rules[1].backendRefs[0].name: no cluster named "missing" (have: web, xdp)',
      'proxy.yaml:32: routes[0].spec.rules[1].backendRefs[0].weight: must be in 0..1000000',
      'proxy.yaml:33: routes[0].spec.rules[1].timeouts.backendRequest: must not be longer than request (Gateway API)',
      'proxy.yaml:36: policies[0].selector.listeners[0]: no listener named "ghost" (have: public)',
      'proxy.yaml:38: policies[0].ingress[0].fromCIDR[0]: 10.0.0.1/8 has host bits set (network is 10.0.0.0/8)',
      'proxy.yaml:39: bogus: unknown field (expected one of admin, logging, drain, listeners, tls, clusters, routes, policies)',
    ]);
  });

  it('reports missing required fields at their parent', () => {
    expect(issues(`listeners:\n  - port: 80\nroutes:\n  - apiVersion: gateway.networking.k8s.io/v1\n    kind: HTTPRoute\n    spec: {}\n`)).toEqual([
      'proxy.yaml:2: listeners[0].name: required field is missing',
      'proxy.yaml:4: routes[0].metadata: required field is missing',
      'proxy.yaml:6: routes[0].spec.parentRefs: required field is missing',
      'proxy.yaml:6: routes[0].spec.rules: required: a route without rules has no backends',
    ]);
  });

  it('A reload kills the proxy: every YAML failure (alias limit, second document, deep nesting, oversized file) is an issue with a line, never a throw', () => {
    const aliases = `${MIN}routes:\n  - hosts: [&h a.example, ${Array(101).fill('*h').join(', ')}]\n`;
    expect(issues(aliases)).toEqual(['proxy.yaml:9: YAML: more than 100 alias expansions (the anchor counts as one; at *h); aliases are limited so a small file cannot expand into a huge one']);
    // 99 are fine (the anchor counts as one use; MAX_YAML_ALIASES is the yaml library's default, 100)
    expect(issues(aliases.replace(', *h, *h]', ']'))).toEqual(['proxy.yaml:9: routes[0].hosts: unknown field (expected one of apiVersion, kind, metadata, spec, status)',
      'proxy.yaml:9: routes[0].apiVersion: required field is missing', 'proxy.yaml:9: routes[0].kind: required field is missing',
      'proxy.yaml:9: routes[0].metadata: required field is missing', 'proxy.yaml:9: routes[0].spec: required field is missing']);
    // "billion laughs": nested aliases multiply
    const laughs = `${MIN}x: &a [l, l, l, l, l, l, l, l, l, l]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nz: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n`;
    expect(issues(laughs)).toEqual([expect.stringMatching(/^proxy\.yaml:9: YAML: more than 100 alias expansions \(the anchor counts as one; at \*a\)/)]);
    expect(issues(`${MIN}---\nlisteners: []\n`)).toEqual(['proxy.yaml:8: YAML: a config file holds one YAML document; a second one starts here ("---")']);
    expect(issues(`${MIN}x: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`)).toEqual(['proxy.yaml:8: YAML: nested too deeply for the YAML parser']);
    const dir = mkdtempSync(join(tmpdir(), 'strata-cfg-big-'));
    try {
      const f = join(dir, 'big.yaml');
      const text = `${MIN}${'# padding\n'.repeat(110_000)}`;
      writeFileSync(f, text);
      // reported at the line the 1 MiB limit falls on, where reading stopped
      expect(checkConfig(f).lines).toEqual([`${f}:${text.slice(0, 1 << 20).split('\n').length}: the file is larger than 1048576 bytes (the limit for a config file)`]);
      expect(() => loadConfig(f)).toThrow(ConfigError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    expect(issues('listeners:\n  - name: a\n    port: 1\n    port: 2\n')[0]).toMatch(/^proxy\.yaml:4: YAML: Map keys must be unique/);
    expect(issues('listeners:\n  - name: a\n   port: [1\n')[0]).toMatch(/^proxy\.yaml:\d: YAML: /);
    expect(issues('')).toEqual(['proxy.yaml:1: the file is empty; expected a mapping with listeners, routes, clusters …']);
    expect(issues('- a\n- b\n')).toEqual(['proxy.yaml:1: the top level must be a mapping']);
    expect(issues('admin: {}\n')).toEqual(['proxy.yaml:1: listeners: required: at least one listener']);
  });

  it('Header injection from config: CR/LF and other control characters in paths, hostnames and header values are refused as file:line:field', () => {
    const route = (rules: string) => routeYaml(rules, '{ name: public }');
    const out = issues(route(`        - filters:
            - type: URLRewrite
              urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: "/x HTTP/1.1\\r\\nX-Injected: 1\\r\\nY: " } }
          backendRefs: [{ name: web }]
        - matches: [{ path: { type: PathPrefix, value: /p } }]
          filters:
            - type: URLRewrite
              urlRewrite: { hostname: "a.example\\r\\nX-Injected: 1", path: { type: ReplacePrefixMatch, replacePrefixMatch: "/q\\n" } }
          backendRefs: [{ name: web }]
        - filters:
            - type: RequestRedirect
              requestRedirect: { hostname: "b.example\\n", path: { type: ReplaceFullPath, replaceFullPath: "/r\\u0000" } }
        - filters:
            - type: RequestHeaderModifier
              requestHeaderModifier:
                set: [{ name: x-a, value: "a\\vb" }, { name: x-b, value: "a\\u010aX-Injected: 1" }, { name: x-c, value: "" }]
                add: [{ name: x-d, value: "tab\\tand obs-text \\u00e9 are fine" }, { name: x-e, value: "del\\u007f" }]
            - type: ResponseHeaderModifier
              responseHeaderModifier: { set: [{ name: "x-f\\r\\nx-g", value: v }], remove: ["${'x'.repeat(257)}"] }
          backendRefs: [{ name: web }]
        - matches: [{ path: { type: Exact, value: "/a b" } }, { path: { type: PathPrefix, value: "/\\u00e9" } }]
          backendRefs: [{ name: web }]
`));
    expect(out).toEqual([
      'proxy.yaml:17: routes[0].spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: must not contain control characters (found U+000D)',
      'proxy.yaml:22: routes[0].spec.rules[1].filters[0].urlRewrite.hostname: must be a lower-case DNS name without wildcard',
      'proxy.yaml:22: routes[0].spec.rules[1].filters[0].urlRewrite.path.replacePrefixMatch: must not contain control characters (found U+000A)',
      'proxy.yaml:26: routes[0].spec.rules[2].filters[0].requestRedirect.hostname: must be a lower-case DNS name without wildcard',
      'proxy.yaml:26: routes[0].spec.rules[2].filters[0].requestRedirect.path.replaceFullPath: must not contain control characters (found U+0000)',
      'proxy.yaml:30: routes[0].spec.rules[3].filters[0].requestHeaderModifier.set[0].value: must not contain control characters (found U+000B)',
      'proxy.yaml:30: routes[0].spec.rules[3].filters[0].requestHeaderModifier.set[1].value: must not contain characters above U+00FF (found U+010A)',
      'proxy.yaml:30: routes[0].spec.rules[3].filters[0].requestHeaderModifier.set[2].value: must not be empty',
      'proxy.yaml:31: routes[0].spec.rules[3].filters[0].requestHeaderModifier.add[1].value: must not contain control characters (found U+007F)',
      'proxy.yaml:33: routes[0].spec.rules[3].filters[1].responseHeaderModifier.set[0].name: must be a valid header name',
      'proxy.yaml:33: routes[0].spec.rules[3].filters[1].responseHeaderModifier.remove[0]: must be at most 256 characters',
      'proxy.yaml:35: routes[0].spec.rules[4].matches[0].path.value: must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&\'()*+,;=:@]|%[0-9a-fA-F]{2})+$)',
      'proxy.yaml:35: routes[0].spec.rules[4].matches[1].path.value: must only contain valid characters (matching ^(?:[-A-Za-z0-9/._~!$&\'()*+,;=:@]|%[0-9a-fA-F]{2})+$)',
    ]);
  });

  it('enforces Gateway API filter and match rules', () => {
    const route = (rules: string) => routeYaml(rules, '{ name: public, port: 9090 }');
    const out = issues(route(`        - matches: [{ path: { type: Exact, value: /a } }]
          filters:
            - type: URLRewrite
              urlRewrite: { path: { type: ReplacePrefixMatch, replaceFullPath: /x } }
            - type: RequestHeaderModifier
              requestHeaderModifier: { set: [{ name: X-A, value: "1" }, { name: x-a, value: "2" }] }
            - type: RequestHeaderModifier
              responseHeaderModifier: { add: [] }
            - type: RequestMirror
              requestMirror: { backendRef: { name: nowhere }, percent: 50, fraction: { numerator: 1 } }
          backendRefs: [{ name: web, kind: Deployment }]
        - matches: [{ path: { type: RegularExpression, value: "(a)\\\\1" }, queryParams: [{ name: q, value: "1" }, { name: q, value: "2" }], method: FETCH }]
          backendRefs: [{ name: web }]
`));
    expect(out).toEqual([
      'proxy.yaml:13: routes[0].spec.parentRefs[0].port: listener public listens on 8080, not 9090',
      'proxy.yaml:18: routes[0].spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch: required when type is ReplacePrefixMatch',
      'proxy.yaml:18: routes[0].spec.rules[0].filters[0].urlRewrite.path.replaceFullPath: must not be set when type is ReplacePrefixMatch',
      'proxy.yaml:20: routes[0].spec.rules[0].filters[1].requestHeaderModifier.set[1].name: duplicate header x-a in set (names are case-insensitive)',
      'proxy.yaml:21: routes[0].spec.rules[0].filters[2].requestHeaderModifier: required when type is RequestHeaderModifier',
      'proxy.yaml:22: routes[0].spec.rules[0].filters[2].responseHeaderModifier: must not be set when type is RequestHeaderModifier',
      'proxy.yaml:24: routes[0].spec.rules[0].filters[3].requestMirror.backendRef.name: no cluster named "nowhere" (have: web)',
      'proxy.yaml:24: routes[0].spec.rules[0].filters[3].requestMirror.fraction: percent and fraction are mutually exclusive',
      'proxy.yaml:25: routes[0].spec.rules[0].backendRefs[0].kind: only kind Service (a cluster of this file) is supported',
      'proxy.yaml:26: routes[0].spec.rules[1].matches[0].path.value: invalid regular expression: invalid escape sequence: \\1 (RE2 syntax)',
      'proxy.yaml:26: routes[0].spec.rules[1].matches[0].queryParams[1].name: duplicate query parameter q in one match',
      'proxy.yaml:26: routes[0].spec.rules[1].matches[0].method: must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH',
    ]);
    const prefix = issues(route(`        - matches: [{ path: { type: Exact, value: /a } }]
          filters:
            - type: URLRewrite
              urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /x } }
          backendRefs: [{ name: web }]
        - filters: [{ type: RequestRedirect, requestRedirect: { port: 8443 } }]
          backendRefs: [{ name: web }]
        - matches: [{ method: GET }]
`));
    expect(prefix.slice(1)).toEqual([
      'proxy.yaml:17: routes[0].spec.rules[0].filters: ReplacePrefixMatch needs exactly one match, of path type PathPrefix',
      'proxy.yaml:21: routes[0].spec.rules[1].backendRefs: must be empty when the rule redirects',
      'proxy.yaml:22: routes[0].spec.rules[2].backendRefs: required unless the rule redirects (RequestRedirect); without backends every request would get 500',
    ]);
  });

  it('checks cluster options and TLS references', () => {
    const out = issues(`tls:
  - name: mtls
    cert: a.pem
    key: b.pem
    ca: c.pem
    trustDomains: [Example.org]
listeners:
  - name: public
    port: 8080
    tls: nope
  - name: plain
    port: 8081
    protocol: HTTPS
admin: { port: 8080 }
clusters:
  - name: h
    endpoints: ["[::1]:80", "[10.0.0.1]:80", { address: 10.0.0.2, port: 80, weight: 0 }]
    lbPolicy: round_robin
    hashPolicy: [{ header: x, sourceIp: true }]
    maglev: { tableSize: 1000 }
    retryPolicy: { retryOn: [gateway-error, 404, teapot], numRetries: 11, retryBackOff: { baseInterval: 1s, maxInterval: 10ms } }
    retryBudget: { budgetPercent: 150 }
    upstreamSpiffeId: spiffe://example.org/x
`);
    expect(out).toEqual([
      'proxy.yaml:6: tls[0].trustDomains[0]: trust domain must be lower case',
      'proxy.yaml:10: listeners[0].tls: no tls entry named "nope" (have: mtls)',
      'proxy.yaml:11: listeners[1].tls: required when protocol is HTTPS',
      'proxy.yaml:14: admin.port: conflicts with listeners[0] (public) on 8080',
      'proxy.yaml:17: clusters[0].endpoints[1]: 10.0.0.1 is not an IPv6 address',
      'proxy.yaml:17: clusters[0].endpoints[2].weight: must be in 1..1000000',
      'proxy.yaml:19: clusters[0].hashPolicy: only applies to lbPolicy ring_hash or maglev',
      'proxy.yaml:19: clusters[0].hashPolicy[0]: must have exactly one of header, sourceIp',
      'proxy.yaml:20: clusters[0].maglev: only applies to lbPolicy maglev',
      'proxy.yaml:20: clusters[0].maglev.tableSize: must be a prime number (Maglev needs it; Envoy uses 65537)',
      'proxy.yaml:21: clusters[0].retryPolicy.retryOn[1]: must be in 500..599',
      'proxy.yaml:21: clusters[0].retryPolicy.retryOn[2]: must be one of connect-failure, reset, gateway-error, 5xx',
      'proxy.yaml:21: clusters[0].retryPolicy.numRetries: must be in 0..10',
      'proxy.yaml:21: clusters[0].retryPolicy.retryBackOff.maxInterval: must be at least baseInterval',
      'proxy.yaml:22: clusters[0].retryBudget.budgetPercent: must be a number 0..100',
      'proxy.yaml:23: clusters[0].upstreamSpiffeId: needs tls (upstream mTLS) to be set',
    ]);
  });

  it('checks policy shape first, then meaning, at the right lines', () => {
    const shape = issues(`${MIN}policies:
  - name: p
    ingress:
      - toPorts:
          - ports: [{ port: 80, proto: TCP }]
            rules: { http: [{ methd: GET }] }
`);
    expect(shape).toEqual([
      'proxy.yaml:12: policies[0].ingress[0].toPorts[0].ports[0].proto: unknown field (expected one of port, protocol)',
      'proxy.yaml:13: policies[0].ingress[0].toPorts[0].rules.http[0].methd: unknown field (expected one of method, path, host, headers, headerMatches)',
    ]);
    const meaning = issues(`${MIN}policies:
  - name: p
    ingress:
      - fromIdentities: [{ spiffeId: "spiffe://td/a/" }]
        toPorts:
          - ports: [{ port: 80 }]
            rules: { http: [{ path: "/(" }] }
`);
    expect(meaning).toEqual([
      'proxy.yaml:11: policies[0].ingress[0].fromIdentities[0].spiffeId: invalid SPIFFE ID "spiffe://td/a/": path must not end with "/"',
      'proxy.yaml:14: policies[0].ingress[0].toPorts[0].rules.http[0].path: invalid regular expression: missing ): \\/( (RE2 syntax)',
    ]);
  });

  it('loadConfig throws a ConfigError carrying file, line, field and every issue', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-config-'));
    try {
      const f = join(dir, 'proxy.yaml');
      writeFileSync(f, 'listeners:\n  - name: a\n    port: 0\n  - name: B\n    port: 1\n');
      let err: unknown;
      try { loadConfig(f); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(ConfigError);
      const ce = err as ConfigError & { issues: unknown[] };
      expect(ce.code).toBe('ERR_STRATA_CONFIG');
      expect([ce.file, ce.line, ce.field]).toEqual([f, 3, 'listeners[0].port']);
      expect(ce.issues).toHaveLength(2);
      expect(ce.message.split('\n')).toEqual([
        `${f}:3: listeners[0].port: must be in 1..65535`,
        `${f}:4: listeners[1].name: must be a DNS-1123 label (lower case letters, digits and "-", at most 63 characters)`,
      ]);
      const missing = checkConfig(join(dir, 'nope.yaml'));
      expect(missing).toEqual({ ok: false, errors: [expect.objectContaining({ message: 'cannot read: ENOENT' })], lines: [`${join(dir, 'nope.yaml')}:0: cannot read: ENOENT`] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('supports YAML anchors and merge keys for repeated cluster settings', () => {
    const r = parseConfig(`${MIN}  - <<: &defaults
      lbPolicy: random
      connectTimeout: 1s
    name: a
    endpoints: ["10.0.0.2:80"]
  - <<: *defaults
    name: b
    endpoints: ["10.0.0.3:80"]
    connectTimeout: 2s
`, 'proxy.yaml');
    expect(r.errors).toEqual([]);
    expect(r.config!.clusters.map((c) => [c.name, c.lbPolicy, c.connectTimeoutMs])).toEqual([['web', 'round_robin', 5000], ['a', 'random', 1000], ['b', 'random', 2000]]);
  });

  it('accepts a minimal file and fills in every default', () => {
    const r = parseConfig(MIN, 'proxy.yaml');
    expect(r.ok).toBe(true);
    expect(r.config!.admin).toBeNull();
    expect(r.config!.listeners[0]).toEqual({
      name: 'public', address: '0.0.0.0', port: 8080, transport: 'auto', protocol: 'HTTP', tls: null,
      timeouts: { headerMs: 10_000, idleMs: 60_000, requestMs: 300_000 }, maxHeaderBytes: 16_384, maxConnections: 16_384,
      maxPipelined: 16, outputHighWaterMark: 65_536,
      upgrade: { types: ['websocket'], idleTimeoutMs: 300_000 }, escapedSlashes: 'REJECT_REQUEST',
    });
    expect(r.config!.drain).toEqual({ timeoutMs: 30_000 });
    expect(r.config!.routes).toEqual([]);
    expect(r.config!.policies).toEqual([]);
  });
});

describe('listener upgrade tunnelling', () => {
  const withUpgrade = (u: string): string => `
listeners:
  - name: public
    port: 8080
    upgrade: ${u}
clusters:
  - name: web
    endpoints: ["10.0.0.1:80"]
`;

  it('reads types (lowercased) and the idle timeout; [] and 0s turn them off', () => {
    expect(parseConfig(withUpgrade('{ types: [WebSocket, h2c], idleTimeout: 90s }'), 'proxy.yaml').config!.listeners[0]!.upgrade).toEqual({ types: ['websocket', 'h2c'], idleTimeoutMs: 90_000 });
    expect(parseConfig(withUpgrade('{ types: [], idleTimeout: 0s }'), 'proxy.yaml').config!.listeners[0]!.upgrade).toEqual({ types: [], idleTimeoutMs: 0 });
    expect(parseConfig(withUpgrade('{ idleTimeout: 1m }'), 'proxy.yaml').config!.listeners[0]!.upgrade).toEqual({ types: ['websocket'], idleTimeoutMs: 60_000 });
  });

  it('names file, line and field for each mistake', () => {
    expect(issues(withUpgrade('{ types: [websocket, "web socket", WEBSOCKET, CONNECT], idleTimeout: 300, tunnel: 1 }'))).toEqual([
      'proxy.yaml:5: listeners[0].upgrade.types[1]: must be an Upgrade protocol name (an HTTP token, e.g. websocket)',
      'proxy.yaml:5: listeners[0].upgrade.types[2]: duplicate upgrade type "WEBSOCKET" (types compare case-insensitively)',
      'proxy.yaml:5: listeners[0].upgrade.types[3]: CONNECT is a method, not an Upgrade protocol: it is answered 501',
      'proxy.yaml:5: listeners[0].upgrade.idleTimeout: must be a duration like "10s", "1m30s" or "250ms" (a bare number has no unit)',
      'proxy.yaml:5: listeners[0].upgrade.tunnel: unknown field (expected one of types, idleTimeout)',
    ]);
    expect(issues(withUpgrade('websocket'))).toEqual(['proxy.yaml:5: listeners[0].upgrade: must be a mapping']);
  });
});

describe('parseDuration (GEP-2257)', () => {
  it('parses Gateway API durations and rejects the rest', () => {
    expect(parseDuration('0s')).toBe(0);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1m30s500ms')).toBe(90_500);
    for (const bad of ['', '10', '1.5s', '1d', '-1s', '1h1h1h1h1h', '100000s', ' 1s']) expect(parseDuration(bad), bad).toBeNull();
  });
});
