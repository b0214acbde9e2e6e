// `strata proxy` and `strata serve` as processes on loopback (STRATA_LAB=off
// keeps them out of any lab that happens to be up): config check, the
// `listening` line, curl through them, clean exit on SIGTERM.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as net from 'node:net';
import * as http from 'node:http';

const execFileP = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
let dir = '';
let runner = '';

function cli(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', runner, ...args], { cwd: root, env: { ...process.env, STRATA_LAB: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Resolves with stdout once `listening` appears, or rejects with the output if the process exits first. */
function ready(p: ChildProcess): Promise<string> {
  return new Promise((res, rej) => {
    let out = '', err = '';
    p.stdout!.on('data', (d) => { out += d; if (out.includes('listening ')) res(out); });
    p.stderr!.on('data', (d) => { err += d; });
    p.on('exit', (code) => rej(new Error(`exited ${code}: ${out}${err}`)));
  });
}

function exitOf(p: ChildProcess): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    let out = '', err = '';
    p.stdout!.on('data', (d) => { out += d; });
    p.stderr!.on('data', (d) => { err += d; });
    p.on('exit', (code) => res({ code, out, err }));
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-cli-'));
  runner = join(dir, 'run.mts');
  writeFileSync(runner, `const [mod, ...args] = process.argv.slice(2);\nconst m = await import(${JSON.stringify(`${root}/src/cli/`)} + mod + '.ts');\nprocess.exitCode = await m.main(args);\n`);
});
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

describe('strata proxy --check', () => {
  it('reports each error with file, line and field, and starts nothing', async () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, [
      'listeners:', '  - name: web', '    port: 18111',
      'clusters:', '  - name: backend', '    endpoints: [127.0.0.1:18112]', '    lbPolicy: fastest',
      'routes:', '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: r1 }', '    spec:',
      '      parentRefs: [{ name: web }]', '      rules:', '        - backendRefs: [{ name: nowhere }]', '',
    ].join('\n'));
    const r = await exitOf(cli(['proxy', '--config', f, '--check']));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${f}:7: clusters[0].lbPolicy`);
    expect(r.err).toContain(`${f}:15: routes[0].spec.rules[0].backendRefs[0].name`);
    expect(r.out).not.toContain('listening');
  });

  it('A reload kills the proxy: --check on a YAML with 101 alias references prints one file:line error, no stack trace', async () => {
    const f = join(dir, 'aliases.yaml');
    writeFileSync(f, [
      'listeners: [{ name: web, port: 18111 }]', 'clusters: [{ name: backend, endpoints: [127.0.0.1:18112] }]',
      'routes:', '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: r1 }', '    spec:',
      '      parentRefs: [{ name: web }]', `      hostnames: [&h a.example, ${Array(101).fill('*h').join(', ')}]`,
      '      rules: [{ backendRefs: [{ name: backend }] }]', '',
    ].join('\n'));
    const r = await exitOf(cli(['proxy', '--config', f, '--check']));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`${f}:9: YAML: more than 100 alias expansions (the anchor counts as one; at *h); aliases are limited so a small file cannot expand into a huge one\n${f}: 1 error\n`);
  });
});

describe('strata proxy and strata serve on the kernel transport', () => {
  let upstream: http.Server;
  let upPort = 0;
  beforeAll(async () => {
    upstream = http.createServer((req, res) => { res.end(`upstream saw ${req.url} xff=${req.headers['x-forwarded-for']}`); });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    upPort = (upstream.address() as net.AddressInfo).port;
  });
  afterAll(async () => { await new Promise<void>((r) => upstream.close(() => r())); });

  it('proxy: listening line, forwards curl, exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const f = join(dir, 'good.yaml');
    writeFileSync(f, [
      'logging: { accessLog: { enabled: false } }',
      'listeners:', '  - name: web', '    address: 127.0.0.1', `    port: ${port}`,
      'clusters:', '  - name: backend', `    endpoints: [127.0.0.1:${upPort}]`,
      'routes:', '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: r1 }', '    spec:',
      '      parentRefs: [{ name: web }]', '      rules:', '        - matches: [{ path: { type: PathPrefix, value: /app } }]', '          backendRefs: [{ name: backend }]', '',
    ].join('\n'));
    const p = cli(['proxy', '--config', f]);
    const done = exitOf(p);
    const out = await ready(p);
    expect(out.trim()).toBe(`listening 127.0.0.1:${port} transport=kernel`);
    const r = await execFileP('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${port}/app/x`]);
    expect(r.stdout).toBe('upstream saw /app/x xff=127.0.0.1');
    const nf = await execFileP('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', `http://127.0.0.1:${port}/other`]);
    expect(nf.stdout).toBe('404');
    p.kill('SIGTERM');
    expect((await done).code).toBe(0);
  });

  it('serve --app hello and --app echo answer curl and wrk', async () => {
    for (const app of ['hello', 'echo']) {
      const port = await freePort();
      const p = cli(['serve', '--transport', 'kernel', '--app', app, '--host', '127.0.0.1', '--port', String(port)]);
      const done = exitOf(p);
      const out = await ready(p);
      expect(out.trim()).toBe(`listening 127.0.0.1:${port} transport=kernel`);
      if (app === 'hello') {
        const r = await execFileP('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${port}/`]);
        expect(r.stdout).toBe('Hello, World!\n');
        const w = await execFileP('wrk', ['-t1', '-c10', '-d1s', `http://127.0.0.1:${port}/`]);
        expect(Number(/(\d+) requests in/.exec(w.stdout)?.[1] ?? 0)).toBeGreaterThan(0);
        expect(w.stdout).not.toMatch(/Socket errors|Non-2xx/);
      } else {
        const r = await execFileP('curl', ['-sS', '--max-time', '10', '--data-binary', 'echo me', `http://127.0.0.1:${port}/`]);
        expect(r.stdout).toBe('echo me');
      }
      p.kill('SIGTERM');
      expect((await done).code).toBe(0);
    }
  });

  it('serve --proto tcp --app echo echoes raw bytes', async () => {
    const port = await freePort();
    const p = cli(['serve', '--proto', 'tcp', '--app', 'echo', '--host', '127.0.0.1', '--port', String(port)]);
    const done = exitOf(p);
    await ready(p);
    const got = await new Promise<string>((res) => {
      const s = net.connect(port, '127.0.0.1', () => s.end('raw bytes\n'));
      let d = '';
      s.on('data', (c) => { d += c; });
      s.on('close', () => res(d));
    });
    expect(got).toBe('raw bytes\n');
    p.kill('SIGTERM');
    expect((await done).code).toBe(0);
  });

  it('afxdp: either serves (stack present) or says why it cannot and exits non-zero', async () => {
    const p = cli(['serve', '--transport', 'afxdp', '--app', 'hello', '--port', '18999']);
    const done = exitOf(p);
    const outcome = await Promise.race([ready(p).then((out) => ({ listening: out }), () => null), done.then((r) => ({ exited: r }))]);
    if (outcome !== null && 'listening' in outcome) {
      expect(outcome.listening).toMatch(/^listening [\d.]+:18999 transport=afxdp$/m);
      p.kill('SIGTERM');
      expect((await done).code).toBe(0);
    } else {
      const r = await done;
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/afxdp transport unavailable: .+/);
    }
  });
});
