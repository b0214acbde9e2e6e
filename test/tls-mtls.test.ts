// mTLS against real peers: `openssl s_client` and `openssl x509`, on
// loopback with ephemeral ports. The server side runs both ways strata uses
// it: a node:net tls.Server (createMtlsServer, the kernel path) and
// wrapServer over a generic stream.Duplex (how the stack's TcpSocket will be
// wrapped). Plus reload while a connection stays open.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { once } from 'node:events';
import {
  createCa, issueSvid, TlsContextManager, reloadOnSignal, createMtlsServer, wrapServer, wrapClient, connectMtls, peerIdentity, authenticated,
  type CertificateAuthority, type IssuedSvid, type SpiffeId,
} from '../src/l7/tls/index.js';
import { run } from '../src/util/run.js';

let dir: string;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
const files: Record<string, { cert: string; key: string }> = {};

function put(name: string, s: { certPem: string; keyPem: string }): { cert: string; key: string } {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}-key.pem`);
  writeFileSync(cert, s.certPem);
  writeFileSync(key, s.keyPem, { mode: 0o600 });
  return (files[name] = { cert, key });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-mtls-'));
  ca = await createCa({ trustDomain: 'example.org' });
  otherCa = await createCa({ trustDomain: 'example.org' }); // same name, different key: must not be trusted
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  put('server', await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/server', dns: ['localhost'], ip: ['127.0.0.1'] }));
  put('client', await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/client' }));
  put('foreign', await issueSvid(otherCa, { spiffeId: 'spiffe://example.org/ns/default/sa/client' }));
  put('caleaf', await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/evil', unsafe: { isCa: true } }));
  put('twouri', await issueSvid(ca, { spiffeId: 'spiffe://example.org/a', unsafe: { extraUriSans: ['spiffe://example.org/b'] } }));
});
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

interface SClient { status: number | null; stdout: string; stderr: string }

/** Runs openssl s_client; sends one line and collects what the server answers before it closes. */
function sClient(port: number, client: string | null, extra: string[] = ['-ign_eof']): Promise<SClient> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_3', '-CAfile', join(dir, 'ca.pem'), '-verify_return_error', ...extra];
  if (client) args.push('-cert', files[client]!.cert, '-key', files[client]!.key);
  return new Promise((resolve) => {
    const p = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const killer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('close', (status) => { clearTimeout(killer); resolve({ status, stdout, stderr }); });
    p.stdin.end('ping\n');
  });
}

/** A Duplex that is not a net.Socket, forwarding to one: forces Node's JS-stream TLS path, as the stack's TcpSocket will. */
function opaqueDuplex(raw: net.Socket): Duplex {
  const d = new Duplex({
    read() { raw.resume(); },
    write(chunk, _enc, cb) { raw.write(chunk, cb); },
    final(cb) { raw.end(); cb(); },
    destroy(err, cb) { raw.destroy(); cb(err); },
  });
  raw.on('data', (c) => { if (!d.push(c)) raw.pause(); });
  raw.on('end', () => d.push(null));
  raw.on('error', (e) => d.destroy(e));
  raw.on('close', () => d.destroy());
  return d;
}

interface Harness { port: number; seen: SpiffeId[]; rejected: string[]; close(): Promise<void> }

async function mtlsNetServer(mgr: TlsContextManager): Promise<Harness> {
  const seen: SpiffeId[] = [];
  const rejected: string[] = [];
  const server = createMtlsServer(mgr, {}, (sock, id) => {
    seen.push(id!);
    // Answer the client's line rather than at once: a reply racing the client's first write upsets s_client.
    sock.once('data', () => sock.end(`hello ${id!.spiffeId}\n`));
  });
  server.on('strata:rejected', (err: { code?: string }) => rejected.push(err.code ?? 'unknown'));
  const conns = new Set<net.Socket>();
  server.on('connection', (c: net.Socket) => { conns.add(c); c.once('close', () => conns.delete(c)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port, seen, rejected,
    close: () => new Promise((r) => { for (const c of conns) c.destroy(); server.close(() => r()); }),
  };
}

async function mtlsDuplexServer(mgr: TlsContextManager): Promise<Harness> {
  const seen: SpiffeId[] = [];
  const rejected: string[] = [];
  const server = net.createServer((raw) => {
    const sock = wrapServer(opaqueDuplex(raw), mgr);
    sock.on('error', (err: Error & { code?: string }) => rejected.push(err.code ?? 'unknown'));
    sock.on('strata:authenticated', (id: SpiffeId) => {
      seen.push(id);
      expect(peerIdentity(sock)).toEqual(id);
      sock.once('data', () => sock.end(`hello ${id.spiffeId}\n`));
    });
  });
  const conns = new Set<net.Socket>();
  server.on('connection', (c: net.Socket) => { conns.add(c); c.once('close', () => conns.delete(c)); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port, seen, rejected,
    close: () => new Promise((r) => { for (const c of conns) c.destroy(); server.close(() => r()); }),
  };
}

for (const [kind, make] of [['node:net tls.Server', mtlsNetServer], ['wrapServer over a generic Duplex', mtlsDuplexServer]] as const) {
  describe(`openssl s_client against ${kind}`, () => {
    let mgr: TlsContextManager;
    let h: Harness;
    beforeAll(async () => {
      mgr = new TlsContextManager({ certFile: files.server!.cert, keyFile: files.server!.key, caFile: join(dir, 'ca.pem') });
      h = await make(mgr);
    });
    afterAll(async () => { await h.close(); mgr.close(); });

    it('accepts a valid SVID and the server sees its SPIFFE ID', async () => {
      const r = await sClient(h.port, 'client');
      expect(r.stdout).toContain('hello spiffe://example.org/ns/default/sa/client');
      expect(r.stdout).toMatch(/Protocol\s*:\s*TLSv1\.3|New, TLSv1\.3/);
      expect(r.stdout).toContain('Verify return code: 0 (ok)');
      expect(h.seen.map((s) => s.spiffeId)).toContain('spiffe://example.org/ns/default/sa/client');
      expect(h.seen.at(-1)).toEqual({ spiffeId: 'spiffe://example.org/ns/default/sa/client', trustDomain: 'example.org', path: '/ns/default/sa/client' });
    });

    it('refuses a client without a certificate', async () => {
      const before = h.seen.length;
      const r = await sClient(h.port, null);
      expect(r.stdout).not.toContain('hello');
      expect(r.stdout + r.stderr).toMatch(/certificate required|alert/i);
      expect(h.seen.length).toBe(before);
      expect(h.rejected).toContain('ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE');
    });

    it('refuses a certificate from another CA', async () => {
      const before = h.seen.length;
      const r = await sClient(h.port, 'foreign');
      expect(r.stdout).not.toContain('hello');
      expect(h.seen.length).toBe(before);
      // tls.Server aborts the handshake itself; over a Duplex our check does, with our code
      if (kind.startsWith('wrapServer')) expect(h.rejected).toContain('ERR_STRATA_TLS_PEER_UNVERIFIED');
      else expect(h.rejected.length).toBeGreaterThan(0);
    });

    it('rejects a leaf that is a CA, by SVID validation', async () => {
      const before = h.seen.length;
      const r = await sClient(h.port, 'caleaf');
      expect(r.stdout).not.toContain('hello');
      expect(h.seen.length).toBe(before);
      expect(h.rejected).toContain('ERR_STRATA_SVID_LEAF_IS_CA');
    });

    it('rejects a leaf with two URI SANs, by SVID validation', async () => {
      const before = h.seen.length;
      const r = await sClient(h.port, 'twouri');
      expect(r.stdout).not.toContain('hello');
      expect(h.seen.length).toBe(before);
      expect(h.rejected).toContain('ERR_STRATA_SVID_MULTIPLE_URI_SANS');
    });

    it('refuses TLS 1.2', async () => {
      const r = await new Promise<SClient>((resolve) => {
        const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${h.port}`, '-tls1_2', '-CAfile', join(dir, 'ca.pem'),
          '-cert', files.client!.cert, '-key', files.client!.key, '-ign_eof']);
        let stdout = ''; let stderr = '';
        p.stdout.on('data', (d) => { stdout += d; }); p.stderr.on('data', (d) => { stderr += d; });
        p.on('close', (status) => resolve({ status, stdout, stderr }));
        p.stdin.end('ping\n');
      });
      expect(r.stdout).not.toContain('hello');
      expect(r.status).not.toBe(0);
    });
  });
}

describe('openssl x509 on generated certificates', () => {
  it('shows the X509-SVID profile on the leaf and the CA profile on the CA', () => {
    const leaf = run(['openssl', 'x509', '-in', files.server!.cert, '-noout', '-text']);
    expect(leaf).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(leaf).toMatch(/Key Usage: critical\s+Digital Signature\s/);
    expect(leaf).toMatch(/Extended Key Usage:\s*\n\s*TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(leaf).toContain('URI:spiffe://example.org/ns/default/sa/server');
    expect(leaf).toContain('DNS:localhost');
    expect(leaf).toContain('IP Address:127.0.0.1');
    expect(leaf).toContain('ASN1 OID: prime256v1');
    expect(leaf).toContain('Authority Key Identifier');
    const caText = run(['openssl', 'x509', '-in', join(dir, 'ca.pem'), '-noout', '-text']);
    expect(caText).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(caText).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(caText).toContain('URI:spiffe://example.org\n');
    expect(run(['openssl', 'verify', '-CAfile', join(dir, 'ca.pem'), files.client!.cert])).toContain(': OK');
  });
});

describe('Node client over a generic Duplex (wrapClient) against wrapServer', () => {
  it('authenticates both sides and carries data, with no socket underneath', async () => {
    const srvMgr = new TlsContextManager({ certFile: files.server!.cert, keyFile: files.server!.key, caFile: join(dir, 'ca.pem') });
    const cliMgr = new TlsContextManager({ certFile: files.client!.cert, keyFile: files.client!.key, caFile: join(dir, 'ca.pem') });
    // An in-memory duplex pair: what goes into one comes out of the other.
    let a!: Duplex; let b!: Duplex; // eslint-disable-line prefer-const
    a = new Duplex({ read() {}, write(c, _e, cb) { b.push(c); cb(); }, final(cb) { b.push(null); cb(); } });
    b = new Duplex({ read() {}, write(c, _e, cb) { a.push(c); cb(); }, final(cb) { a.push(null); cb(); } });
    const s = wrapServer(a, srvMgr);
    const c = wrapClient(b, cliMgr, { expectServer: 'spiffe://example.org/ns/default/sa/server' });
    const [sid, cid] = await Promise.all([authenticated(s), authenticated(c)]);
    expect(sid.spiffeId).toBe('spiffe://example.org/ns/default/sa/client');
    expect(cid.spiffeId).toBe('spiffe://example.org/ns/default/sa/server');
    expect(c.getProtocol()).toBe('TLSv1.3');
    s.on('data', (d) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
    c.write('abc');
    const [reply] = await once(c, 'data');
    expect(String(reply)).toBe('echo:abc');
    c.destroy(); s.destroy();
    srvMgr.close(); cliMgr.close();
  });

  it('rejects a valid SVID from a trust domain the context does not accept', async () => {
    const other = await createCa({ trustDomain: 'other.org' });
    const bundle = join(dir, 'federated.pem');
    writeFileSync(bundle, ca.certPem + other.certPem);
    const foreignTd = await issueSvid(other, { spiffeId: 'spiffe://other.org/ns/default/sa/client' });
    put('othertd', foreignTd);
    const srvMgr = new TlsContextManager({ certFile: files.server!.cert, keyFile: files.server!.key, caFile: bundle, trustDomains: ['example.org'] });
    const cliMgr = new TlsContextManager({ certFile: files.othertd!.cert, keyFile: files.othertd!.key, caFile: bundle });
    expect(cliMgr.trustDomains).toEqual(['example.org', 'other.org']);
    let a!: Duplex; let b!: Duplex; // eslint-disable-line prefer-const
    a = new Duplex({ read() {}, write(c, _e, cb) { b.push(c); cb(); }, final(cb) { b.push(null); cb(); } });
    b = new Duplex({ read() {}, write(c, _e, cb) { a.push(c); cb(); }, final(cb) { a.push(null); cb(); } });
    const s = wrapServer(a, srvMgr);
    const c = wrapClient(b, cliMgr);
    c.on('error', () => {});
    const err = await authenticated(s).then(() => null, (e: { code?: string }) => e);
    expect(err?.code).toBe('ERR_STRATA_SVID_UNTRUSTED_DOMAIN');
    expect(peerIdentity(s)).toBeNull();
    c.destroy();
    srvMgr.close(); cliMgr.close();
  });

  it('times out a handshake that never starts', async () => {
    const srvMgr = new TlsContextManager({ certFile: files.server!.cert, keyFile: files.server!.key, caFile: join(dir, 'ca.pem') });
    const silent = new Duplex({ read() {}, write(_c, _e, cb) { cb(); } });
    const s = wrapServer(silent, srvMgr, { handshakeTimeoutMs: 50 });
    const err = await authenticated(s).then(() => null, (e: { code?: string }) => e);
    expect(err?.code).toBe('ERR_STRATA_TLS_HANDSHAKE_TIMEOUT');
    srvMgr.close();
  });

  it('the client refuses a server whose SPIFFE ID is not the expected one', async () => {
    const srvMgr = new TlsContextManager({ certFile: files.server!.cert, keyFile: files.server!.key, caFile: join(dir, 'ca.pem') });
    const cliMgr = new TlsContextManager({ certFile: files.client!.cert, keyFile: files.client!.key, caFile: join(dir, 'ca.pem') });
    const h = await mtlsNetServer(srvMgr);
    const c = connectMtls({ host: '127.0.0.1', port: h.port }, cliMgr, { expectServer: 'spiffe://example.org/ns/default/sa/other' });
    const err = await authenticated(c).then(() => null, (e: { code?: string }) => e);
    expect(err?.code).toBe('ERR_STRATA_TLS_PEER_IDENTITY');
    c.destroy();
    await h.close(); srvMgr.close(); cliMgr.close();
  });
});

describe('TlsContextManager reload', () => {
  it('swaps the certificate for new handshakes while an open connection keeps working', async () => {
    const certFile = join(dir, 'rot.pem');
    const keyFile = join(dir, 'rot-key.pem');
    const v1 = await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/server', ip: ['127.0.0.1'] });
    writeFileSync(certFile, v1.certPem); writeFileSync(keyFile, v1.keyPem);
    const mgr = new TlsContextManager({ certFile, keyFile, caFile: join(dir, 'ca.pem') });
    const cliMgr = new TlsContextManager({ certFile: files.client!.cert, keyFile: files.client!.key, caFile: join(dir, 'ca.pem') });
    const server = createMtlsServer(mgr, {}, (sock) => { sock.on('data', (d) => sock.write(d)); });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    const fingerprintOf = (s: tls.TLSSocket) => s.getPeerX509Certificate()!.fingerprint256;
    const echo = async (s: tls.TLSSocket, msg: string) => { s.write(msg); const [d] = await once(s, 'data'); return String(d); };

    const first = connectMtls({ host: '127.0.0.1', port }, cliMgr);
    await authenticated(first);
    const firstFingerprint = fingerprintOf(first);
    expect(firstFingerprint).toBe(new (await import('node:crypto')).X509Certificate(v1.certPem).fingerprint256);
    expect(await echo(first, 'one')).toBe('one');

    // Rotate: a new key pair and a new SPIFFE ID, written over the same files.
    const v2 = await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/server-v2', ip: ['127.0.0.1'] });
    writeFileSync(certFile, v2.certPem); writeFileSync(keyFile, v2.keyPem);
    const r = mgr.reload();
    expect(r.ok).toBe(true);
    expect(mgr.generation).toBe(2);
    expect(mgr.identity.spiffeId).toBe('spiffe://example.org/ns/default/sa/server-v2');

    const second = connectMtls({ host: '127.0.0.1', port }, cliMgr);
    expect((await authenticated(second)).spiffeId).toBe('spiffe://example.org/ns/default/sa/server-v2');
    expect(fingerprintOf(second)).not.toBe(firstFingerprint);
    // The connection opened before the reload is untouched.
    expect(await echo(first, 'still here')).toBe('still here');
    expect(peerIdentity(first)!.spiffeId).toBe('spiffe://example.org/ns/default/sa/server');

    // openssl, which sends no SNI to an IP address, also gets the new certificate.
    const o = await sClient(port, 'client', ['-showcerts']);
    expect(o.stdout).toContain('Verify return code: 0 (ok)');
    const leafPem = o.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)![0];
    expect(new (await import('node:crypto')).X509Certificate(leafPem).subjectAltName).toContain('server-v2');

    // A broken rotation (key of v1 with cert of v3) keeps v2 and reports why.
    const v3 = await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/server-v3' });
    writeFileSync(certFile, v3.certPem); writeFileSync(keyFile, v1.keyPem);
    const errors: string[] = [];
    mgr.on('reloadError', (e: { code: string }) => errors.push(e.code));
    const bad = mgr.reload();
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.error.code).toBe('ERR_STRATA_TLS_CONTEXT');
    expect(errors).toEqual(['ERR_STRATA_TLS_CONTEXT']);
    expect(mgr.generation).toBe(2);
    const third = connectMtls({ host: '127.0.0.1', port }, cliMgr);
    expect((await authenticated(third)).spiffeId).toBe('spiffe://example.org/ns/default/sa/server-v2');

    // A non-SVID certificate is refused as well.
    const caLeaf = await issueSvid(ca, { spiffeId: 'spiffe://example.org/x', unsafe: { isCa: true } });
    writeFileSync(certFile, caLeaf.certPem); writeFileSync(keyFile, caLeaf.keyPem);
    const bad2 = mgr.reload();
    expect(bad2.ok).toBe(false);
    if (!bad2.ok) expect(bad2.error.message).toMatch(/not an X509-SVID.*ERR_STRATA_SVID_LEAF_IS_CA/);

    for (const s of [first, second, third]) s.destroy();
    await new Promise<void>((r2) => server.close(() => r2()));
    mgr.close(); cliMgr.close();
  });

  it('watches the files and reloads when they change', async () => {
    const sub = mkdtempSync(join(dir, 'watch-'));
    const certFile = join(sub, 'cert.pem');
    const keyFile = join(sub, 'key.pem');
    const v1 = await issueSvid(ca, { spiffeId: 'spiffe://example.org/w1' });
    writeFileSync(certFile, v1.certPem); writeFileSync(keyFile, v1.keyPem);
    const mgr = new TlsContextManager({ certFile, keyFile, caFile: join(dir, 'ca.pem'), watch: true, watchDebounceMs: 50 });
    const v2 = await issueSvid(ca, { spiffeId: 'spiffe://example.org/w2' });
    const reloaded = once(mgr, 'reload');
    // Write the key first, then the cert: the intermediate state may fail; the last event must succeed.
    writeFileSync(keyFile, v2.keyPem); writeFileSync(certFile, v2.certPem);
    const [result] = await reloaded;
    expect(result.ok).toBe(true);
    expect(mgr.identity.spiffeId).toBe('spiffe://example.org/w2');
    mgr.close();
  });

  it('serves plain TLS 1.3 without client certificates when requireClientCert is false', async () => {
    const mgr = new TlsContextManager({ certFile: files.server!.cert, keyFile: files.server!.key, caFile: join(dir, 'ca.pem'), requireClientCert: false });
    const seen: (SpiffeId | null)[] = [];
    const server = createMtlsServer(mgr, {}, (sock, id) => { seen.push(id); sock.once('data', () => sock.end('hello anonymous\n')); });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const r = await sClient((server.address() as net.AddressInfo).port, null);
    expect(r.stdout).toContain('hello anonymous');
    expect(r.stdout).toContain('Verify return code: 0 (ok)');
    expect(seen).toEqual([null]);
    await new Promise<void>((r2) => server.close(() => r2()));
    mgr.close();
  });

  it('reloads on SIGHUP through reloadOnSignal', async () => {
    const mgr = new TlsContextManager({ certFile: files.server!.cert, keyFile: files.server!.key, caFile: join(dir, 'ca.pem') });
    const before = process.listenerCount('SIGHUP');
    const stop = reloadOnSignal([mgr]);
    expect(process.listenerCount('SIGHUP')).toBe(before + 1);
    const reloaded = once(mgr, 'reload');
    process.kill(process.pid, 'SIGHUP');
    const [r] = await reloaded;
    expect(r).toMatchObject({ ok: true, generation: 2, spiffeId: 'spiffe://example.org/ns/default/sa/server' });
    stop();
    expect(process.listenerCount('SIGHUP')).toBe(before);
    mgr.close();
  });

  it('refuses to start with unusable files', () => {
    expect(() => new TlsContextManager({ certFile: join(dir, 'missing.pem'), keyFile: files.client!.key, caFile: join(dir, 'ca.pem') }))
      .toThrow(/ENOENT/);
    expect(() => new TlsContextManager({ certFile: files.server!.cert, keyFile: files.client!.key, caFile: join(dir, 'ca.pem') }))
      .toThrow(/cannot build TLS context/);
    expect(() => new TlsContextManager({ certFile: files.server!.cert, keyFile: files.server!.key, caFile: files.server!.cert }))
      .toThrow(/cA=true/);
  });
});
