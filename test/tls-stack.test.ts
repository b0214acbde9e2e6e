// mTLS over strata's own TCP on TAP and AF_XDP, where node's TLS runs over
// the TcpSocket's direct mode (src/l7/transport/tls-carrier.ts), against
// kernel peers in the lab: curl with a client SVID posting a body larger
// than the send and receive windows to the echo server (backpressure both
// ways through the carrier), refused without a certificate; and the stack as
// the TLS client of a kernel node:tls server, streaming several MiB both ways.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { rootSkipReason } from './helpers/lab.js';
import { openStackLab } from './helpers/stack-lab.js';
import { spawnIn } from './helpers/stack-host.js';
import { probeTransports } from '../src/link/native.js';
import type { Lab } from '../src/lab/topo.js';
import type { StackTransport } from '../src/l7/transport/index.js';
import type { L7Socket } from '../src/l7/transport/types.js';
import { HttpServer } from '../src/l7/server/index.js';
import { echoApp } from '../src/apps/index.js';
import { createCa, issueSvid, TlsContextManager, wrapServer, wrapClient, peerIdentity } from '../src/l7/tls/index.js';
import { DirectTlsCarrier } from '../src/l7/transport/tls-carrier.js';
import { findTcpInfo, underlyingStream } from '../src/flows/record.js';

const exec = promisify(execFile);
let dir: string;
const f = (n: string): string => join(dir, n);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'strata-tls-stack-'));
  const ca = await createCa({ trustDomain: 'example.org' });
  writeFileSync(f('ca.pem'), ca.certPem);
  const svids = {
    server: await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/server', ip: ['10.200.0.3', '10.201.0.2', '10.200.0.1', '10.201.0.1'] }),
    client: await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/client' }),
  };
  for (const [n, s] of Object.entries(svids)) {
    writeFileSync(f(`${n}.pem`), s.certPem);
    writeFileSync(f(`${n}-key.pem`), s.keyPem, { mode: 0o600 });
  }
});
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

// The kernel TLS server for the client-side test: requires a client certificate, echoes a SHA-256 of what it got, then sends `size` bytes.
const PEER = `
const tls = require('tls'), fs = require('fs'), crypto = require('crypto');
const [addr, d, size] = [process.argv[1], process.argv[2], Number(process.argv[3])];
const srv = tls.createServer({ cert: fs.readFileSync(d + '/server.pem'), key: fs.readFileSync(d + '/server-key.pem'), ca: fs.readFileSync(d + '/ca.pem'),
  requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (c) => { h.update(c); n += c.length; });
  s.on('end', () => {
    const out = Buffer.alloc(size, 0x61);
    s.write(JSON.stringify({ n, sha: h.digest('hex'), peer: s.getPeerCertificate().subjectaltname }) + '\\n');
    s.end(out);
  });
  s.on('close', () => { srv.close(); });
});
srv.listen(9443, addr, () => console.log('ready'));
`;

for (const kind of ['tap', 'afxdp'] as const) {
  const skip = rootSkipReason() ?? (probeTransports()[kind].available ? null : probeTransports()[kind].reason!);

  describe.skipIf(skip !== null)(`mTLS over the stack on ${kind}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let lab: Lab;
    let t: StackTransport;
    let addr = '';
    let ctx: TlsContextManager;
    let server: HttpServer;
    let listener: { close(): Promise<void> } | undefined;

    beforeAll(async () => {
      ({ lab, t, addr } = await openStackLab(kind, `tl${kind[0]}`));
      ctx = new TlsContextManager({ certFile: f('server.pem'), keyFile: f('server-key.pem'), caFile: f('ca.pem') });
      server = new HttpServer(echoApp);
      // As `strata serve --tls` does: each accepted TcpSocket is wrapped, then served.
      listener = await t.listen(8443, addr, (s: L7Socket) => {
        const w = wrapServer(s as unknown as Duplex, ctx);
        w.on('error', () => w.destroy());
        server.accept(w as unknown as L7Socket);
      });
    }, 60_000);

    afterAll(async () => {
      await listener?.close();
      await server?.close();
      ctx?.close();
      await t?.close();
      lab?.down();
    });

    // TAP's kernel peer is the server namespace; AF_XDP's is the client namespace.
    const peerArgv = (argv: string[]): string[] => (kind === 'tap' ? lab.server(argv) : lab.client(argv));

    it('curl with a client SVID: a 3 MiB POST comes back whole; without a certificate the handshake is refused', async () => {
      const body = randomBytes(3 << 20);
      writeFileSync(f(`body-${kind}`), body);
      const argv = peerArgv(['curl', '-sS', '--max-time', '60', '--cacert', f('ca.pem'), '--cert', f('client.pem'), '--key', f('client-key.pem'),
        '--data-binary', `@${f(`body-${kind}`)}`, '-H', 'Content-Type: application/octet-stream', '-o', f(`out-${kind}`), '-w', '%{http_code} %{size_download}', `https://${addr}:8443/`]);
      const r = await exec(argv[0]!, argv.slice(1), { maxBuffer: 1 << 20 });
      expect(r.stdout).toBe(`200 ${body.length}`);
      const back = (await import('node:fs')).readFileSync(f(`out-${kind}`));
      expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
      const none = peerArgv(['curl', '-sS', '--max-time', '20', '--cacert', f('ca.pem'), `https://${addr}:8443/`]);
      await expect(exec(none[0]!, none.slice(1))).rejects.toThrow();
    }, 90_000);

    it('the stack as TLS client: 4 MiB up and 6 MiB down with a kernel TLS server, the server sees our SVID', async () => {
      const [ns, peerAddr] = kind === 'tap' ? [lab.serverNs, lab.tapKernelAddr] : [lab.clientNs, lab.clientAddr];
      const peer = spawnIn(ns, ['node', '-e', PEER, peerAddr, dir, String(6 << 20)], { timeoutMs: 60_000 });
      const cctx = new TlsContextManager({ certFile: f('client.pem'), keyFile: f('client-key.pem'), caFile: f('ca.pem') });
      try {
        await peer.ready;
        const raw = await t.connect(9443, peerAddr);
        const s = wrapClient(raw as unknown as Duplex, cctx, { expectServer: 'spiffe://example.org/ns/default/sa/server' });
        await new Promise<void>((resolve, reject) => { s.once('secureConnect', () => resolve()); s.once('error', reject); });
        expect(peerIdentity(s)?.spiffeId).toBe('spiffe://example.org/ns/default/sa/server');
        // TLS runs over the TcpSocket's direct mode, and observers still reach the TCP facts through it.
        expect(underlyingStream(s)).toBeInstanceOf(DirectTlsCarrier);
        expect(findTcpInfo(s)?.state).toBe('ESTABLISHED');
        expect((underlyingStream(s) as { remoteAddress?: string }).remoteAddress).toBe(peerAddr);
        const up = randomBytes(4 << 20);
        const chunks: Buffer[] = [];
        const ended = new Promise<void>((resolve, reject) => { s.on('data', (c: Buffer) => chunks.push(c)); s.once('end', () => resolve()); s.once('error', reject); });
        // Written in pieces, honouring backpressure.
        for (let off = 0; off < up.length; off += 256 << 10) {
          if (!s.write(up.subarray(off, off + (256 << 10)))) await new Promise((r) => s.once('drain', r));
        }
        s.end();
        await ended;
        const all = Buffer.concat(chunks);
        const nl = all.indexOf(0x0a);
        const report = JSON.parse(all.subarray(0, nl).toString()) as { n: number; sha: string; peer: string };
        expect(report.n).toBe(up.length);
        expect(report.sha).toBe(createHash('sha256').update(up).digest('hex'));
        expect(report.peer).toContain('spiffe://example.org/ns/default/sa/client');
        const down = all.subarray(nl + 1);
        expect(down.length).toBe(6 << 20);
        expect(down.every((b) => b === 0x61)).toBe(true);
        await peer.done;
      } finally {
        peer.kill();
        cctx.close();
      }
    }, 90_000);
  });
}
