// The server's Upgrade hand-over (RFC 9110 §7.8) and trailers (RFC 9112
// §7.1.2), driven by raw sockets over node:net: pipelined requests ahead of
// an upgrade are answered in order before the hand-over, the bytes after the
// upgrade request go to the taker, no server timer touches a taken
// connection, close() leaves it alone; without the hook (or when it declines)
// the server stays in HTTP; CONNECT is still 501.
import { describe, it, expect, afterEach } from 'vitest';
import * as net from 'node:net';
import { HttpServer, upgradeVia, type ServerRequest, type ServerResponse, type HttpServerOptions } from '../src/l7/server/index.js';
import { KernelTransport } from '../src/l7/transport/index.js';
import type { L7Socket } from '../src/l7/transport/types.js';

const transport = new KernelTransport();
const servers: HttpServer[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.close();
});

async function serve(handler: (req: ServerRequest, res: ServerResponse) => void, opts: HttpServerOptions = {}): Promise<{ server: HttpServer; port: number }> {
  const server = new HttpServer(handler, opts);
  servers.push(server);
  const port = (await server.listen(transport, 0, '127.0.0.1')).port;
  return { server, port };
}

/** A raw client: everything received so far, and a way to wait for some text. */
function client(port: number): { s: net.Socket; text: () => string; waitFor: (needle: string) => Promise<string>; ended: Promise<void> } {
  const s = net.connect(port, '127.0.0.1');
  sockets.push(s);
  let out = '';
  const waiters: { needle: string; resolve: (t: string) => void }[] = [];
  s.on('data', (d) => {
    out += d.toString('latin1');
    for (let i = waiters.length - 1; i >= 0; i--) if (out.includes(waiters[i]!.needle)) { waiters[i]!.resolve(out); waiters.splice(i, 1); }
  });
  const ended = new Promise<void>((r) => s.on('close', () => r()));
  return {
    s, text: () => out, ended,
    waitFor: (needle) => (out.includes(needle) ? Promise.resolve(out) : new Promise((resolve) => waiters.push({ needle, resolve }))),
  };
}

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n';

/** An onUpgrade that answers 101 and echoes every byte (those handed over first). */
function echoTaker(events: string[], taken: L7Socket[] = []) {
  return (req: ServerRequest, socket: L7Socket, head: Buffer): void => {
    events.push(`upgrade ${req.url} head=${head.toString('latin1')}`);
    taken.push(socket);
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n');
    if (head.length > 0) socket.write(Buffer.concat([Buffer.from('echo:'), head]));
    socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
    socket.on('end', () => socket.end());
    socket.resume();
  };
}

describe('HttpServer: Upgrade hand-over', () => {
  it('answers pipelined requests in order first, then hands over the connection with the bytes after the head', async () => {
    const events: string[] = [];
    const { port } = await serve((req, res) => {
      res.once('finish', () => events.push(`finish ${req.url}`));
      // /a answers last: /b and the upgrade must wait for it.
      if (req.url === '/a') setTimeout(() => res.end('A'), 50);
      else res.end('B');
    }, { onUpgrade: echoTaker(events) });
    const c = client(port);
    c.s.write(`GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n${UPGRADE}EARLY`);
    await c.waitFor('echo:EARLY');
    c.s.write('LATER');
    const out = await c.waitFor('echo:LATER');
    const a = out.indexOf('\r\n\r\nA'), b = out.indexOf('\r\n\r\nB'), sw = out.indexOf('HTTP/1.1 101');
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(a);
    expect(sw).toBeGreaterThan(b);
    expect(out.indexOf('echo:EARLY')).toBeGreaterThan(sw);
    // /b's response waited for /a's (RFC 9112 §9.3.2), and the hand-over for both.
    expect(events).toEqual(['finish /a', 'finish /b', 'upgrade /ws head=EARLY']);
    c.s.destroy();
  });

  it('takes nothing more as HTTP: a request pipelined after the upgrade is tunnel bytes', async () => {
    const events: string[] = [];
    let handled = 0;
    const { port } = await serve((_req, res) => { handled++; res.end('x'); }, { onUpgrade: echoTaker(events) });
    const c = client(port);
    c.s.write(`${UPGRADE}GET /after HTTP/1.1\r\nHost: a\r\n\r\n`);
    await c.waitFor('echo:GET /after');
    expect(handled).toBe(0);
    expect(events).toEqual(['upgrade /ws head=GET /after HTTP/1.1\r\nHost: a\r\n\r\n']);
    c.s.destroy();
  });

  it('no server timer fires on a taken connection, it is not counted, and close() leaves it open', async () => {
    const taken: L7Socket[] = [];
    const { server, port } = await serve((_req, res) => res.end('x'), {
      onUpgrade: echoTaker([], taken), headersTimeoutMs: 50, requestTimeoutMs: 50, keepAliveTimeoutMs: 50,
    });
    const c = client(port);
    c.s.write(UPGRADE);
    await c.waitFor('HTTP/1.1 101');
    expect(server.connectionCount).toBe(0);
    expect(server.stats.upgrades).toBe(1);
    // Several of each timeout pass in silence; a partial "request" is just bytes now.
    await new Promise((r) => setTimeout(r, 400));
    c.s.write('GET / HT');
    await new Promise((r) => setTimeout(r, 300));
    await c.waitFor('echo:GET / HT');
    expect(server.stats.idleTimeouts + server.stats.headerTimeouts + server.stats.requestTimeouts).toBe(0);
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    expect(taken[0]!.destroyed).toBe(false);
    c.s.write('still here');
    await c.waitFor('echo:still here');
    c.s.end();
    await c.ended;
  });

  it('without the hook an Upgrade request is plain HTTP and the connection stays in HTTP', async () => {
    const seen: string[] = [];
    const { port } = await serve((req, res) => { seen.push(`${req.url} ${req.header('upgrade') ?? ''}`); res.end(req.url); });
    const c = client(port);
    c.s.write(`${UPGRADE}GET /next HTTP/1.1\r\nHost: a\r\n\r\n`);
    const out = await c.waitFor('/next');
    expect(out).not.toContain(' 101 ');
    expect(seen).toEqual(['/ws echo', '/next ']);
    c.s.destroy();
  });

  it('an Upgrade in an HTTP/1.0 request is ignored (RFC 9110 §7.8)', async () => {
    const events: string[] = [];
    const { port } = await serve((_req, res) => res.end('http/1.0 answer'), { onUpgrade: echoTaker(events) });
    const c = client(port);
    c.s.write('GET /ws HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    await c.ended;
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 /);
    expect(c.text().endsWith('http/1.0 answer')).toBe(true);
    expect(events).toEqual([]);
  });

  it('shouldUpgrade can decline, and an Upgrade request with a body always stays in HTTP', async () => {
    const events: string[] = [];
    const seen: string[] = [];
    const { port } = await serve(async (req, res) => { seen.push(`${req.url} ${await req.text()}`); res.end('ok'); }, {
      onUpgrade: echoTaker(events), shouldUpgrade: (req) => req.url !== '/declined',
    });
    const c = client(port);
    c.s.write('GET /declined HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
    await c.waitFor('ok');
    c.s.write('POST /body HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\nContent-Length: 4\r\n\r\nDATA');
    await c.waitFor('okHTTP');
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(['/declined ', '/body DATA']);
    expect(events).toEqual([]);
    c.s.destroy();
  });

  it('CONNECT is still answered 501 with the hook set', async () => {
    const events: string[] = [];
    const { port } = await serve((_req, res) => res.end('no'), { onUpgrade: echoTaker(events) });
    const c = client(port);
    c.s.write('CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n');
    await c.ended;
    expect(c.text()).toMatch(/^HTTP\/1\.1 501 /);
    expect(events).toEqual([]);
  });

  it('upgradeVia: a handler that answers normally closes the connection after its response', async () => {
    let finished = 0;
    const handler = (_req: ServerRequest, res: ServerResponse): void => { res.once('finish', () => finished++); res.statusCode = 403; res.end('denied\n'); };
    const { port } = await serve(handler, { onUpgrade: upgradeVia(handler) });
    const c = client(port);
    c.s.write(UPGRADE);
    await c.ended;
    expect(c.text()).toMatch(/^HTTP\/1\.1 403 .*\r\n/);
    expect(c.text()).toMatch(/\r\nConnection: close\r\n/);
    expect(c.text().endsWith('\r\n\r\ndenied\n')).toBe(true);
    expect(finished).toBe(1);
  });

  it('upgradeVia: the internal settle/close hooks run like the events, on an answer and on a client that goes away', async () => {
    // The node proxy counts requests in flight with _onSettled and the proxy
    // notices a vanished client with _onClose: an UpgradeResponse must run
    // them as a plain response does.
    const seen: string[] = [];
    let n = 0;
    const handler = (req: ServerRequest, res: ServerResponse): void => {
      const id = n++;
      res._onSettled = () => seen.push(`settled ${id}`);
      res._onClose = () => seen.push(`client gone ${id}`);
      res.once('finish', () => seen.push(`finish ${id}`));
      res.once('close', () => seen.push(`close ${id}`));
      if (req.url === '/answer') { res.statusCode = 403; res.end('denied\n'); }
      // '/hang': never answered; the client closes.
    };
    const { port } = await serve(handler, { onUpgrade: upgradeVia(handler) });
    const a = client(port);
    a.s.write(UPGRADE.replace('/ws', '/answer'));
    await a.ended;
    expect(seen).toEqual(['settled 0', 'finish 0']);
    const b = client(port);
    b.s.write(UPGRADE.replace('/ws', '/hang'));
    await new Promise((r) => setTimeout(r, 50));
    b.s.destroy();
    for (let i = 0; i < 100 && seen.length < 5; i++) await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(['settled 0', 'finish 0', 'settled 1', 'client gone 1', 'close 1']);
  });
});

describe('HttpServer: trailers', () => {
  it('addTrailers: sent in the last chunk, a whole body becomes chunked for them, HTTP/1.0 drops them', async () => {
    const { port } = await serve((req, res) => {
      res.addTrailers({ 'X-Sum': '7' });
      if (req.url === '/stream') { res.write('ab'); res.end('cd'); } else res.end('whole');
    });
    const c = client(port);
    c.s.write('GET /stream HTTP/1.1\r\nHost: a\r\n\r\n');
    expect((await c.waitFor('X-Sum: 7\r\n\r\n')).endsWith('2\r\nab\r\n2\r\ncd\r\n0\r\nX-Sum: 7\r\n\r\n')).toBe(true);
    const d = client(port);
    d.s.write('GET /whole HTTP/1.1\r\nHost: a\r\n\r\n');
    const out = await d.waitFor('X-Sum: 7\r\n\r\n');
    expect(out).toContain('Transfer-Encoding: chunked\r\n');
    expect(out.endsWith('5\r\nwhole\r\n0\r\nX-Sum: 7\r\n\r\n')).toBe(true);
    const e = client(port);
    e.s.write('GET /whole HTTP/1.0\r\n\r\n');
    await e.ended;
    expect(e.text()).toContain('Content-Length: 5\r\n');
    expect(e.text().endsWith('\r\n\r\nwhole')).toBe(true);
    c.s.destroy();
    d.s.destroy();
  });

  it('rawTrailers: a chunked request body ends with its trailer fields known', async () => {
    let got: string[] = [];
    const { port } = await serve(async (req, res) => { const b = await req.text(); got = [b, ...req.rawTrailers]; res.end('ok'); });
    const c = client(port);
    c.s.write('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Check: 1\r\nX-Other: two\r\n\r\n');
    await c.waitFor('ok');
    expect(got).toEqual(['abc', 'x-check', '1', 'x-other', 'two']);
    c.s.destroy();
  });
});
