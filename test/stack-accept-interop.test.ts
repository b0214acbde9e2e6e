// Issue 3 acceptance, interop both ways, over TAP and AF_XDP: real clients
// in the client namespace (curl, OpenBSD nc, node:net) against servers on
// strata's stack, and strata's TcpSocket against real servers in the client
// namespace (nc -l, node:net, nginx). Every exchange is checked byte for byte
// (SHA-256) in both directions, and both ends must see an orderly close.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tryRun } from '../src/util/run.js';
import { TcpServer, TcpSocket } from '../src/stack/tcp/socket.js';
import { KINDS, KeyStream, StackHost, lastJson, nodePeer, pumpStream, spawnIn, stackSkipReason, streamSha, waitFor } from './helpers/stack-host.js';

const KiB = 1024, MiB = 1024 * KiB;
const C_SEED = 31, S_SEED = 42;

/** n bytes of KeyStream(seed) as one Buffer (small payloads only). */
function bytes(seed: number, n: number): Buffer {
  const k = new KeyStream(seed);
  const parts: Buffer[] = [];
  for (let left = n; left > 0;) { const m = Math.min(left, 64 * KiB); parts.push(k.next(m)); left -= m; }
  return Buffer.concat(parts);
}
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A minimal HTTP/1.1 origin on the stack: GET /<n> answers n bytes of S_SEED; POST answers the body's SHA-256. */
function httpOrigin(s: import('../src/stack/tcp/socket.js').TcpSocket): void {
  let head = Buffer.alloc(0);
  let body: ReturnType<typeof createHash> | null = null;
  let want = 0;
  s.on('data', (d: Buffer) => {
    if (body === null) {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const [method, target] = lines[0]!.split(' ');
      const rest = head.subarray(end + 4);
      if (method === 'GET') {
        const n = Number(target!.slice(1));
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n`);
        pumpStream(s, S_SEED, n);
        return;
      }
      const cl = lines.find((l) => /^content-length:/i.test(l));
      want = Number(cl?.split(':')[1] ?? 0);
      body = createHash('sha256');
      d = rest;
    }
    body.update(d);
    want -= d.length;
    if (want <= 0) {
      const hex = body.digest('hex');
      s.end(`HTTP/1.1 200 OK\r\nContent-Length: ${hex.length}\r\nConnection: close\r\n\r\n${hex}`);
    }
  });
  s.on('error', () => { /* counted by the stack; the client reports the failure */ });
}

for (const kind of KINDS) {
  const skip = stackSkipReason(kind);
  describe.skipIf(skip !== null)(`interop with real peers on ${kind}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: StackHost;
    let dir: string;
    let echoClosed = 0;

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'strata-interop-'));
      chmodSync(dir, 0o755); // nginx's workers run unprivileged
      h = StackHost.open(kind, { tag: 'iop' });
      // Echo on 7000 (node:net semantics: ends after the peer's FIN once everything is echoed).
      new TcpServer(h.tcp, {}, (s) => { s.pipe(s); s.on('close', () => { echoClosed++; }); s.on('error', () => {}); }).listen(7000);
      new TcpServer(h.tcp, {}, httpOrigin).listen(8080);
    });

    afterAll(() => { h?.close(); if (dir) rmSync(dir, { recursive: true, force: true }); });

    const sh = (cmd: string, timeoutMs = 60_000): Promise<string> => spawnIn(h.lab.clientNs, ['sh', '-c', cmd], { timeoutMs }).done;
    const file = (name: string, seed: number, n: number): string => { const p = join(dir, name); writeFileSync(p, bytes(seed, n)); return p; };

    describe('the stack as server', () => {
      it('curl GETs 4 MiB and POSTs 2 MiB (body hashed by the stack)', async () => {
        const get = await sh(`curl -sS --fail --max-time 50 http://${h.addr}:8080/${4 * MiB} | sha256sum`);
        expect(get.split(' ')[0]).toBe(streamSha(S_SEED, 4 * MiB));
        const up = file('post.bin', C_SEED, 2 * MiB);
        const post = await sh(`curl -sS --fail --max-time 50 -H 'Expect:' --data-binary @${up} http://${h.addr}:8080/upload`);
        expect(post.trim()).toBe(streamSha(C_SEED, 2 * MiB));
      }, 120_000);

      it('OpenBSD nc sends 3 MiB to the echo service, half-closes (-N), and reads all 3 MiB back', async () => {
        const closed0 = echoClosed;
        const inp = file('nc-echo.bin', C_SEED, 3 * MiB);
        const r = await sh(`nc -N ${h.addr} 7000 < ${inp} | sha256sum`);
        expect(r.split(' ')[0]).toBe(streamSha(C_SEED, 3 * MiB));
        expect(await waitFor(() => echoClosed > closed0, 5000)).toBe(true);
      }, 90_000);

      it('node:net: 100 echo clients at once, each 64 KiB, all intact', async () => {
        const r = lastJson<{ ok: number; bad: string[] }>(await nodePeer(h.lab.clientNs, `
          let ok = 0; const bad = []; let left = 100;
          for (let i = 0; i < 100; i++) {
            const data = ks(100 + i)(65536); const want = crypto.createHash('sha256').update(data).digest('hex');
            const hash = crypto.createHash('sha256'); let got = 0;
            const s = net.connect(7000, '${h.addr}', () => s.end(data));
            s.on('data', (d) => { hash.update(d); got += d.length; });
            s.on('close', () => { if (got === 65536 && hash.digest('hex') === want) ok++; else bad.push(i + ':' + got); if (--left === 0) { out({ ok, bad }); process.exit(0); } });
            s.on('error', (e) => bad.push(i + ':' + e.code));
          }
        `, { timeoutMs: 60_000 }).done);
        expect(r).toEqual({ ok: 100, bad: [] });
      }, 90_000);

      it('a connection to a port with no listener is refused with RST (ECONNREFUSED for nc and node:net)', async () => {
        const rst0 = h.tcp.counters.rstsSent;
        const nc = tryRun(h.client(['nc', '-z', '-w', '3', h.addr, '7999']));
        expect(nc.status).not.toBe(0);
        const r = await nodePeer(h.lab.clientNs, `
          const s = net.connect(7999, '${h.addr}'); s.on('connect', () => { out({ code: 'connected' }); process.exit(0); });
          s.on('error', (e) => { out({ code: e.code }); process.exit(0); });
        `, { timeoutMs: 20_000 }).done;
        expect(lastJson<{ code: string }>(r).code).toBe('ECONNREFUSED');
        expect(h.tcp.counters.rstsSent).toBeGreaterThanOrEqual(rst0 + 2);
      }, 40_000);
    });

    describe('the stack as client', () => {
      /** Connects a TcpSocket, sends `send`, half-closes, collects everything until the peer's FIN. */
      const exchange = (port: number, send: Buffer | null, onConnect?: (c: TcpSocket) => void): Promise<Buffer> => new Promise((resolve, reject) => {
        const parts: Buffer[] = [];
        const c = new TcpSocket(h.tcp, { allowHalfOpen: true });
        c.on('data', (d: Buffer) => parts.push(d));
        c.on('end', () => { c.end(); resolve(Buffer.concat(parts)); });
        c.on('error', reject);
        c.connect(port, h.lab.clientAddr, () => { if (onConnect) onConnect(c); else if (send) c.end(send); });
      });

      it('talks to nc -l: 2 MiB each way at once, both sides intact', async () => {
        const inp = file('ncl-in.bin', S_SEED, 2 * MiB);
        const outp = join(dir, 'ncl-out.bin');
        const server = spawnIn(h.lab.clientNs, ['sh', '-c', `nc -l -N ${h.lab.clientAddr} 9200 < ${inp} > ${outp}; sha256sum ${outp}`], { timeoutMs: 60_000 });
        // nc prints nothing when it listens: wait for the socket.
        expect(await waitFor(() => tryRun(h.client(['ss', '-Hltn', 'sport = :9200'])).stdout.includes('9200'), 10_000)).toBe(true);
        // OpenBSD nc exits once the network side has ended, even with stdin
        // left to send: so FIN only after nc's own FIN (exchange() ends on 'end').
        const data = bytes(C_SEED, 2 * MiB);
        const got = await exchange(9200, null, (c) => c.write(data));
        expect(got.length).toBe(2 * MiB);
        expect(sha(got)).toBe(streamSha(S_SEED, 2 * MiB));
        expect((await server.done).split(' ')[0]).toBe(streamSha(C_SEED, 2 * MiB));
      }, 90_000);

      it('talks to a node:net echo server: 4 MiB echoed intact, orderly close both ways', async () => {
        const peer = nodePeer(h.lab.clientNs, `
          const srv = net.createServer((s) => { s.pipe(s); s.on('close', () => { out({ closed: true }); srv.close(); }); });
          srv.listen(9201, '${h.lab.clientAddr}', () => console.log('ready'));
        `, { timeoutMs: 60_000 });
        await peer.ready;
        const got = await exchange(9201, bytes(C_SEED, 4 * MiB));
        expect(got.length).toBe(4 * MiB);
        expect(sha(got)).toBe(streamSha(C_SEED, 4 * MiB));
        expect(lastJson<{ closed: boolean }>(await peer.done)).toEqual({ closed: true });
      }, 90_000);

      it('fetches a 3 MiB file from nginx over HTTP/1.1', async () => {
        const root = join(dir, 'nginx');
        mkdirSync(join(root, 'www'), { recursive: true });
        writeFileSync(join(root, 'www', 'blob'), bytes(S_SEED, 3 * MiB));
        const conf = join(root, 'nginx.conf');
        writeFileSync(conf, `
          worker_processes 1; daemon off; pid ${root}/nginx.pid; error_log ${root}/error.log;
          events { worker_connections 64; }
          http {
            access_log off; client_body_temp_path ${root}; proxy_temp_path ${root}; fastcgi_temp_path ${root};
            uwsgi_temp_path ${root}; scgi_temp_path ${root}; sendfile off;
            server { listen ${h.lab.clientAddr}:9202; root ${root}/www; }
          }`);
        const nginx = spawnIn(h.lab.clientNs, ['nginx', '-c', conf, '-p', root], { timeoutMs: 60_000 });
        try {
          expect(await waitFor(() => tryRun(h.client(['ss', '-Hltn', 'sport = :9202'])).stdout.includes('9202'), 10_000)).toBe(true);
          const res = await exchange(9202, null, (c) => c.write(`GET /blob HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n`));
          const end = res.indexOf('\r\n\r\n');
          const head = res.subarray(0, end).toString('latin1');
          expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
          expect(head).toMatch(new RegExp(`\r\nContent-Length: ${3 * MiB}\r\n`, 'i'));
          const body = res.subarray(end + 4);
          expect(body.length).toBe(3 * MiB);
          expect(sha(body)).toBe(streamSha(S_SEED, 3 * MiB));
        } finally {
          nginx.kill();
          await nginx.done.catch(() => { /* killed on purpose */ });
        }
      }, 90_000);

      it('a connect to a closed port in the client namespace fails with ECONNREFUSED', async () => {
        const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
          const c = new TcpSocket(h.tcp);
          c.on('error', resolve);
          c.on('connect', () => resolve(Object.assign(new Error('connected'), { code: 'connected' })));
          c.connect(9299, h.lab.clientAddr);
        });
        expect(err.code).toBe('ECONNREFUSED');
      }, 30_000);
    });
  });
}
