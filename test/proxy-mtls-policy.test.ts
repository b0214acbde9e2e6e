// mTLS on `strata serve --tls` and on a proxy listener, with L7 policy on
// the client's SPIFFE ID: a valid SVID gets through, no certificate is
// refused, and a request the policy does not allow gets 403 and never reaches
// the upstream. Real peers: curl and openssl s_client.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as net from 'node:net';
import * as http from 'node:http';
import { createCa, issueSvid } from '../src/l7/tls/index.js';

const execFileP = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
let dir = '';
let runner = '';
const files = { ca: '', serverCert: '', serverKey: '', clientCert: '', clientKey: '', otherCert: '', otherKey: '' };

function cli(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', runner, ...args], { cwd: root, env: { ...process.env, STRATA_LAB: 'off' }, stdio: ['ignore', 'pipe', 'pipe'] });
}
function ready(p: ChildProcess): Promise<string> {
  return new Promise((res, rej) => {
    let out = '', err = '';
    p.stdout!.on('data', (d) => { out += d; if (out.includes('listening ')) res(out); });
    p.stderr!.on('data', (d) => { err += d; });
    p.on('exit', (code) => rej(new Error(`exited ${code}: ${out}${err}`)));
  });
}
function exited(p: ChildProcess): Promise<number | null> { return new Promise((r) => p.on('exit', (c) => r(c))); }
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}
/** curl over mTLS; -k because SVIDs name a SPIFFE ID, not a DNS name (the server's identity is not what this test checks). */
async function curl(url: string, withCert: 'client' | 'other' | 'none'): Promise<{ code: number; status: string; body: string }> {
  const args = ['-sS', '-k', '--max-time', '10', '-w', '\n%{http_code}', url];
  if (withCert === 'client') args.unshift('--cert', files.clientCert, '--key', files.clientKey);
  if (withCert === 'other') args.unshift('--cert', files.otherCert, '--key', files.otherKey);
  try {
    const r = await execFileP('curl', args);
    const i = r.stdout.lastIndexOf('\n');
    return { code: 0, status: r.stdout.slice(i + 1), body: r.stdout.slice(0, i) };
  } catch (e) {
    return { code: (e as { code: number }).code, status: '000', body: '' };
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-mtls-'));
  runner = join(dir, 'run.mts');
  writeFileSync(runner, `const [mod, ...args] = process.argv.slice(2);\nconst m = await import(${JSON.stringify(`${root}/src/cli/`)} + mod + '.ts');\nprocess.exitCode = await m.main(args);\n`);
  const ca = await createCa({ trustDomain: 'example.org' });
  const other = await createCa({ trustDomain: 'example.org' });
  const server = await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/server' });
  const client = await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/client' });
  const stranger = await issueSvid(other, { spiffeId: 'spiffe://example.org/ns/default/sa/client' });
  const w = (name: string, text: string): string => { const f = join(dir, name); writeFileSync(f, text); return f; };
  files.ca = w('ca.pem', ca.certPem);
  files.serverCert = w('server.pem', server.chainPem);
  files.serverKey = w('server.key', server.keyPem);
  files.clientCert = w('client.pem', client.chainPem);
  files.clientKey = w('client.key', client.keyPem);
  files.otherCert = w('other.pem', stranger.chainPem);
  files.otherKey = w('other.key', stranger.keyPem);
});
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

describe('strata serve --tls (mTLS, TLS 1.3)', () => {
  it('answers a client with a valid SVID; refuses none and another CA', async () => {
    const port = await freePort();
    const p = cli(['serve', '--transport', 'kernel', '--app', 'hello', '--host', '127.0.0.1', '--port', String(port), '--tls', '--cert', files.serverCert, '--key', files.serverKey, '--ca', files.ca]);
    const done = exited(p);
    await ready(p);
    const ok = await curl(`https://127.0.0.1:${port}/`, 'client');
    expect(ok.status).toBe('200');
    expect(ok.body).toBe('Hello, World!\n');
    expect((await curl(`https://127.0.0.1:${port}/`, 'none')).status).toBe('000');
    expect((await curl(`https://127.0.0.1:${port}/`, 'other')).status).toBe('000');
    // openssl s_client without a certificate: the handshake is refused.
    const s = await new Promise<string>((res) => {
      const o = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-CAfile', files.ca], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      o.stdout.on('data', (d) => { out += d; });
      o.stderr.on('data', (d) => { out += d; });
      o.stdin.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      setTimeout(() => o.stdin.end(), 500);
      o.on('exit', () => res(out));
    });
    expect(s).not.toContain('Hello, World!');
    expect(s).toMatch(/alert|error|errno/i);
    p.kill('SIGTERM');
    expect(await done).toBe(0);
  });
});

describe('strata proxy: mTLS listener with SPIFFE policy', () => {
  let upstream: http.Server;
  let upPort = 0;
  let hits = 0;
  beforeAll(async () => {
    upstream = http.createServer((req, res) => { hits++; res.end(`upstream ${req.url}`); });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    upPort = (upstream.address() as net.AddressInfo).port;
  });
  afterAll(async () => { await new Promise<void>((r) => upstream.close(() => r())); });

  it('allows what the rules allow for the client SPIFFE ID, 403 otherwise, refuses no cert', async () => {
    const port = await freePort();
    const f = join(dir, 'proxy.yaml');
    writeFileSync(f, `
logging: { accessLog: { enabled: false } }
tls:
  - name: srv
    cert: ${files.serverCert}
    key: ${files.serverKey}
    ca: ${files.ca}
listeners:
  - name: secure
    address: 127.0.0.1
    port: ${port}
    tls: srv
clusters:
  - name: app
    endpoints: [127.0.0.1:${upPort}]
routes:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: all }
    spec:
      parentRefs: [{ name: secure }]
      rules:
        - backendRefs: [{ name: app }]
policies:
  - name: api
    selector: { listeners: [secure] }
    ingress:
      - fromIdentities:
          - spiffeId: spiffe://example.org/ns/default/sa/client
        toPorts:
          - ports: [{ port: ${port} }]
            rules:
              http:
                - method: GET
                  path: /app/.*
`);
    const p = cli(['proxy', '--config', f]);
    const done = exited(p);
    const out = await ready(p);
    expect(out.trim()).toBe(`listening 127.0.0.1:${port} transport=kernel`);
    const ok = await curl(`https://127.0.0.1:${port}/app/x`, 'client');
    expect(ok.status).toBe('200');
    expect(ok.body).toBe('upstream /app/x');
    const before = hits;
    const denied = await curl(`https://127.0.0.1:${port}/admin`, 'client');
    expect(denied.status).toBe('403');
    expect(hits).toBe(before);
    expect((await curl(`https://127.0.0.1:${port}/app/x`, 'none')).status).toBe('000');
    p.kill('SIGTERM');
    expect(await done).toBe(0);
  });
});
