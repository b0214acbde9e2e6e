// User regexes run on RE2 (src/util/regex.ts): routes, policy and /flows
// filters match in time linear in the input, with RE2's syntax.
//
// The backtracking cases run in a child process: on a backtracking engine
// `/api/(\w+/?)*` against "/api/" + 40 × "a" + "!" takes 2^40 steps (hours),
// and a synchronous match cannot be interrupted inside the test worker. The
// child is killed after a generous bound; the assertion is on what it
// printed (the match results), never on a duration.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { compileRegex, regexIssue, RegexSyntaxError } from '../src/util/regex.js';
import { compileFilter, FlowFilterError } from '../src/flows/filter.js';
import { parseConfig, formatIssue } from '../src/config/index.js';
import { Prng } from '../src/util/prng.js';
import RE2 from 're2';

const root = resolve(import.meta.dirname, '..');
const EVIL = `/api/${'a'.repeat(40)}!`;
let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'strata-re2-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

/** Runs a TypeScript module (imports relative to the repo root) in a child; its stdout, '' if it had to be killed. */
function runChild(name: string, body: string): Promise<{ out: string; killed: boolean }> {
  const file = join(dir, `${name}.mts`);
  writeFileSync(file, body.replaceAll('@/', `${root}/`));
  return new Promise((res) => {
    execFile(process.execPath, ['--import', 'tsx', file], { cwd: root, timeout: 30_000, killSignal: 'SIGKILL' }, (err, stdout) => {
      res({ out: stdout.trim(), killed: err !== null && (err as NodeJS.ErrnoException & { killed?: boolean }).killed === true });
    });
  });
}

describe('Catastrophic regex backtracking', () => {
  it('Catastrophic regex backtracking: a RegularExpression route (path and header) answers an evil path at once, no match', async () => {
    const r = await runChild('router', `
      import { Router } from '@/src/l7/proxy/router.ts';
      const router = new Router([{ name: 'r', rules: [
        { matches: [{ path: { type: 'RegularExpression', value: '/api/(\\\\w+/?)*' } }], backendRefs: [{ name: 'a' }] },
        { matches: [{ path: { type: 'PathPrefix', value: '/h' }, headers: [{ type: 'RegularExpression', name: 'x-v', value: '(\\\\w+/?)*' }] }], backendRefs: [{ name: 'b' }] },
      ] }]);
      const req = (path, v) => ({ method: 'GET', path, query: '', host: 'x', header: (n) => (n === 'x-v' ? v : undefined) });
      const out = [
        router.match(req(${JSON.stringify(EVIL)}, '')) === null ? 'evil:none' : 'evil:matched',
        router.match(req('/h', ${JSON.stringify(EVIL.slice(5))})) === null ? 'header:none' : 'header:matched',
        router.match(req('/api/v1/users/', '')) !== null ? 'normal:matched' : 'normal:none',
      ];
      console.log(out.join(' '));
    `);
    expect(r.out).toBe('evil:none header:none normal:matched');
  });

  it('Catastrophic regex backtracking: an L7 policy path/host regex denies an evil path at once', async () => {
    const r = await runChild('policy', `
      import { compilePolicies } from '@/src/l7/policy/compile.ts';
      const set = compilePolicies([{ name: 'p', ingress: [{ toPorts: [{ ports: [{ port: 80 }], rules: { http: [{ path: '/api/(\\\\w+/?)*', host: '(\\\\w+\\\\.?)*' }] } }] }] }]);
      const req = (path, host) => ({ port: 80, srcAddr: '10.0.0.1', identity: null, method: 'GET', path, host, header: () => undefined });
      console.log([
        set.evaluate('l', req(${JSON.stringify(EVIL)}, 'a.example')).allowed,
        set.evaluate('l', req('/api/x', ${JSON.stringify('a'.repeat(40) + '!')})).allowed,
        set.evaluate('l', req('/api/x/y', 'a.example')).allowed,
      ].join(' '));
    `);
    expect(r.out).toBe('false false true');
  });

  it('Catastrophic regex backtracking: a /flows path filter scans an evil recorded path at once', async () => {
    const r = await runChild('flows', `
      import { compileFilter } from '@/src/flows/filter.ts';
      const f = compileFilter(['path=^/api/(\\\\w+/?)*$']);
      const rec = (path) => ({ strata: { http: { path } } });
      console.log([f.match(rec(${JSON.stringify(EVIL)})), f.match(rec('/api/a/b'))].join(' '));
    `);
    expect(r.out).toBe('false true');
  });
});

describe('RE2 syntax, compiled in one place', () => {
  it('anchors full matches without letting the pattern break out of the group', () => {
    expect(compileRegex('/a|/b').test('/b')).toBe(true);
    expect(compileRegex('/a|/b').test('/bx')).toBe(false);
    expect(() => compileRegex('x)|(.*')).toThrow(RegexSyntaxError);
    expect(compileRegex('^/x', { full: false }).test('/x/y')).toBe(true);
    expect(compileRegex('^/X', { full: false, ignoreCase: true }).test('/x')).toBe(true);
    // RE2 syntax that V8 lacks: inline flags, POSIX classes, \z
    expect(compileRegex('(?i)/api').test('/API')).toBe(true);
    expect(compileRegex('/[[:digit:]]+\\z').test('/123')).toBe(true);
  });

  it('the literal and literal-.* fast paths agree with RE2 full matches on 20000 seeded inputs', () => {
    const patterns = ['GET', '/public/.*', '', '.*', 'a b', '/x/', '/a-b_c~d%20.*'];
    const pieces = ['GET', 'get', '/public/', '/public', '/x/', 'a', ' ', 'b', '\n', '\r', '.', '%20', '/a-b_c~d', 'é', '😀', '\ud800', ''];
    const rng = new Prng(10);
    let compared = 0;
    for (const p of patterns) {
      const fast = compileRegex(p);
      expect(fast).not.toBeInstanceOf(RE2); // the fast path is what is tested
      const slow = new RE2(`^(?:${p})$`);
      for (let i = 0; i < 20_000 / patterns.length; i++) {
        let s = rng.chance(0.3) ? p.replace('.*', '') : '';
        for (let k = rng.int(4); k > 0; k--) s += pieces[rng.int(pieces.length)]!;
        expect(fast.test(s), `${JSON.stringify(p)} on ${JSON.stringify(s)}`).toBe(slow.test(s));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(19_000);
    expect(compileRegex('/a.*b')).toBeInstanceOf(RE2);
    expect(compileRegex('GET', { ignoreCase: true })).toBeInstanceOf(RE2);
  });

  it('RE2 refuses backreferences, lookaround and oversized patterns with its own message', () => {
    expect(regexIssue('(a)\\1')).toBe('invalid regular expression: invalid escape sequence: \\1 (RE2 syntax)');
    expect(regexIssue('(?=a)b')).toMatch(/invalid perl operator: \(\?=/);
    expect(regexIssue('(?<!a)b')).toMatch(/invalid perl operator/);
    expect(regexIssue('a{1001}')).toMatch(/invalid repetition size/);
    expect(regexIssue('x'.repeat(5000))).toMatch(/longer than 4096/);
    expect(regexIssue('/api/(\\w+/?)*')).toBeNull();
    expect(() => compileFilter(['path=^(a)\\1'])).toThrow(FlowFilterError);
    const e = (() => { try { compileRegex('('); } catch (x) { return x as RegexSyntaxError; } return null; })();
    expect(e?.code).toBe('ERR_STRATA_REGEX');
  });

  it('--check reports a pattern RE2 cannot compile as file:line:field', () => {
    const text = `listeners: [{ name: web, port: 8080 }]
clusters: [{ name: a, endpoints: ["127.0.0.1:1"] }]
routes:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: r }
    spec:
      parentRefs: [{ name: web }]
      rules:
        - matches:
            - path: { type: RegularExpression, value: '/(?=x)' }
              headers: [{ type: RegularExpression, name: x-a, value: '(a)\\1' }]
          backendRefs: [{ name: a }]
policies:
  - name: p
    ingress:
      - toPorts:
          - ports: [{ port: 8080 }]
            rules: { http: [{ method: 'GET|(?<=P)OST' }] }
`;
    const r = parseConfig(text, 'proxy.yaml');
    expect(r.errors.map(formatIssue)).toEqual([
      'proxy.yaml:11: routes[0].spec.rules[0].matches[0].path.value: invalid regular expression: invalid perl operator: (?= (RE2 syntax)',
      'proxy.yaml:12: routes[0].spec.rules[0].matches[0].headers[0].value: invalid regular expression: invalid escape sequence: \\1 (RE2 syntax)',
      'proxy.yaml:19: policies[0].ingress[0].toPorts[0].rules.http[0].method: invalid regular expression: invalid perl operator: (?<= (RE2 syntax)',
    ]);
  });
});
