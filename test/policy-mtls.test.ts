// The mTLS acceptance path end to end, without the HTTP server of another
// module: a YAML config (TLS + policy) is loaded, `openssl s_client`
// presents an SVID, the server takes the SPIFFE ID from the handshake and
// the policy decides 200 or 403. The request line and Host are read by a
// few lines of test code; the policy request object is reused across
// requests, as the real server will do.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { once } from 'node:events';
import { createCa, issueSvid, createMtlsServer, type SpiffeId, type TlsContextManager } from '../src/l7/tls/index.js';
import { parseConfig, createTlsContexts, configPolicies, configL4DenyEntries, type ProxyConfig } from '../src/config/index.js';
import { forbiddenResponse, verdictLogRecord, type PolicyRequest, type VerdictLogRecord } from '../src/l7/policy/index.js';

let dir: string;
let cfg: ProxyConfig;
let contexts: Map<string, TlsContextManager>;
let server: net.Server;
let port: number;
const log: VerdictLogRecord[] = [];

const YAML = `
tls:
  - name: mtls
    cert: server/cert.pem
    key: server/key.pem
    ca: ca.pem
    watch: false
listeners:
  - name: secure
    address: 127.0.0.1
    port: 8443
    tls: mtls
clusters:
  - name: app
    endpoints: ["127.0.0.1:9"]
routes:
  - apiVersion: gateway.networking.k8s.io/v1
    kind: HTTPRoute
    metadata: { name: app }
    spec:
      parentRefs: [{ name: secure }]
      rules: [{ backendRefs: [{ name: app }] }]
policies:
  - name: app-access
    selector: { listeners: [secure] }
    ingress:
      - fromIdentities: [{ spiffeId: spiffe://example.org/ns/default/sa/client }]
        toPorts:
          - rules:
              http:
                - { method: GET, path: "/app/.*" }
      - fromIdentities: [{ trustDomain: example.org, pathPrefix: /ns/admin }]
    ingressDeny:
      - fromCIDR: [192.0.2.0/24]
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-policy-mtls-'));
  const ca = await createCa({ trustDomain: 'example.org' });
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  const put = async (name: string, spiffeId: string) => {
    const s = await issueSvid(ca, { spiffeId, ip: ['127.0.0.1'] });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'cert.pem'), s.certPem);
    writeFileSync(join(dir, name, 'key.pem'), s.keyPem, { mode: 0o600 });
  };
  await put('server', 'spiffe://example.org/ns/default/sa/server');
  await put('client', 'spiffe://example.org/ns/default/sa/client');
  await put('other', 'spiffe://example.org/ns/default/sa/other');
  await put('admin', 'spiffe://example.org/ns/admin/sa/ops');

  const r = parseConfig(YAML, join(dir, 'proxy.yaml'), { checkFiles: true });
  expect(r.errors).toEqual([]);
  cfg = r.config!;
  contexts = createTlsContexts(cfg);
  const listener = cfg.listeners[0]!;
  const policy = configPolicies(cfg).forListener(listener.name);

  // One request object, re-pointed for every request.
  let headers = new Map<string, string>();
  const req: PolicyRequest = { port: listener.port, srcAddr: '', identity: null, method: '', path: '', host: '', header: (n) => headers.get(n) };

  server = createMtlsServer(contexts.get(listener.tls!)!, {}, (sock, id: SpiffeId | null) => {
    let buf = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [line, ...rest] = buf.slice(0, end).split('\r\n');
      const [method, target] = line!.split(' ');
      headers = new Map(rest.map((h) => [h.slice(0, h.indexOf(':')).trim().toLowerCase(), h.slice(h.indexOf(':') + 1).trim()]));
      req.srcAddr = sock.remoteAddress ?? '';
      req.identity = id;
      req.method = method!;
      req.path = target!;
      req.host = headers.get('host') ?? '';
      const v = policy.evaluate(req);
      if (v.allowed) {
        sock.end(`HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n`);
      } else {
        log.push(verdictLogRecord(listener.name, v, req));
        const f = forbiddenResponse();
        sock.end(`HTTP/1.1 ${f.status} Forbidden\r\n${f.headers.map(([k, val]) => `${k}: ${val}\r\n`).join('')}content-length: ${f.body.length}\r\nconnection: close\r\n\r\n${f.body}`);
      }
    });
  });
  // The file says 8443; the test binds an ephemeral port and keeps the policy's port view consistent.
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  for (const m of contexts.values()) m.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(client: string, method: string, path: string): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-quiet', '-crlf', '-ign_eof',
      '-CAfile', join(dir, 'ca.pem'), '-cert', join(dir, client, 'cert.pem'), '-key', join(dir, client, 'key.pem')]);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const killer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('close', () => { clearTimeout(killer); resolve(out); });
    p.stdin.end(`${method} ${path} HTTP/1.1\nHost: app.example.org\n\n`);
  });
}

describe('mTLS identity + L7 policy with openssl s_client', () => {
  it('allows the client SVID for GET /app/…', async () => {
    expect(await request('client', 'GET', '/app/index.html')).toMatch(/^HTTP\/1\.1 200 OK/);
  });

  it('denies the same SVID a method the rule does not allow, with 403 and a logged verdict', async () => {
    const out = await request('client', 'DELETE', '/app/index.html');
    expect(out).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(out).toContain('Access denied');
    expect(log.at(-1)).toMatchObject({
      action: 'deny', listener: 'secure', rule: 'default-deny', identity: 'spiffe://example.org/ns/default/sa/client',
      method: 'DELETE', path: '/app/index.html', host: 'app.example.org', src: '127.0.0.1',
    });
  });

  it('denies another identity of the same trust domain', async () => {
    expect(await request('other', 'GET', '/app/index.html')).toMatch(/^HTTP\/1\.1 403/);
    expect(log.at(-1)!.identity).toBe('spiffe://example.org/ns/default/sa/other');
  });

  it('allows everything to an identity under the admin path prefix', async () => {
    expect(await request('admin', 'DELETE', '/anything')).toMatch(/^HTTP\/1\.1 200 OK/);
  });

  it('exports the CIDR deny for early enforcement', () => {
    expect(configL4DenyEntries(cfg)).toEqual([
      { prefix: '192.0.2.0/24', family: 4, prefixLen: 24, port: 8443, protocol: 'TCP', source: 'app-access/ingressDeny[0]' },
    ]);
  });
});
