// The cost of L7 over the userspace stack, in process and without the
// kernel: what one keep-alive GET costs the hello server, and what one
// proxied GET costs the node proxy (the deployed path: YAML config, flow
// observer, generations, pooled upstream connections), both on strata's TCP.
//
// Two stacks on a MemLink pair with a virtual clock (src/stack/sim.ts). Stack
// B runs what is measured. Stack A is the peer: wrk's part (connections that
// send wrk's GET and read each response by its length) and the upstream's
// (nginx's hello answer, canned), both on the stack's callback interface so
// the peer costs little and the same in every run. The figure is wall time
// per request for everything (B, A, the simulated link), in this process's
// CPU time (user + system), so it moves with the code and hardly with the
// machine's other load, and not at all with the kernel's network path: the
// A/B tool for the JS of the hot path. The network benchmarks (strata bench)
// say what it is worth end to end.
//
// Run: npx tsx bench/micro/l7-path.bench.ts   (BENCH_REQUESTS per round, default 20000)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sim } from '../../src/stack/sim.js';
import { Tcp } from '../../src/stack/tcp/tcp.js';
import { TcpServer, connect as tcpConnect } from '../../src/stack/tcp/socket.js';
import type { TcpConnection, TcpHandler } from '../../src/stack/tcp/connection.js';
import { ip4FromString } from '../../src/stack/registration.js';
import type { L7Listener, L7Socket, L7Transport } from '../../src/l7/transport/types.js';
import { HttpServer } from '../../src/l7/server/index.js';
import { helloApp } from '../../src/apps/hello.js';
import { NodeProxy } from '../../src/proxy-runtime/node-proxy.js';
import { Logger } from '../../src/proxy-runtime/log.js';

const ROUND = Number(process.env.BENCH_REQUESTS ?? 20_000);
const CONNS = 50;
/** One-way link delay and the simulation's tick, ms. */
const DELAY = 0.05;
const GET = Buffer.from('GET / HTTP/1.1\r\nHost: 10.0.0.2:8080\r\n\r\n', 'latin1');
const UPSTREAM_RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 07 Dec 2026 00:00:00 GMT\r\n'
  + 'Content-Type: text/plain\r\nContent-Length: 14\r\nConnection: keep-alive\r\n\r\nHello, World!\n', 'latin1');

/** L7Transport over a simulated stack's TCP. */
class SimTransport implements L7Transport {
  readonly kind = 'tap' as const;
  constructor(private readonly tcp: Tcp) {}
  listen(port: number, host: string, on: (s: L7Socket) => void): Promise<L7Listener> {
    const srv = new TcpServer(this.tcp, { noDelay: true }, (s) => on(s as unknown as L7Socket));
    srv.listen(port, host);
    return Promise.resolve({ host, port, close: () => new Promise<void>((r) => { srv.close(); r(); }) });
  }
  connect(port: number, host: string): Promise<L7Socket> {
    return new Promise((resolve, reject) => {
      const s = tcpConnect(this.tcp, port, host, undefined, { noDelay: true });
      s.once('error', reject);
      s.once('connect', () => resolve(s as unknown as L7Socket));
    });
  }
  close(): Promise<void> { return Promise.resolve(); }
  setL4Deny(): { where: 'conntrack'; installed: number; skipped: [] } { return { where: 'conntrack', installed: 0, skipped: [] }; }
}

/** wrk's part: CONNS keep-alive connections, each sending the next GET as soon as a whole response is in. */
class Load {
  done = 0;
  target = 0;
  private respLen = 0;
  private readonly have = new Map<TcpConnection, number>();
  constructor(private readonly tcp: Tcp, private readonly addr: number, private readonly port: number) {}

  start(): void {
    const self = this;
    const h: TcpHandler = {
      // TCP_NODELAY as wrk and nginx have it: with Nagle, a reply written while earlier bytes are unacknowledged
      // would wait for the proxy's delayed ACK (40 ms = 800 ticks of virtual time) and the run would crawl.
      onConnect(c) { c.setNoDelay(true); c.write(GET, 0, GET.length); self.have.set(c, 0); },
      onData(c, buf, off, len) {
        if (self.respLen === 0) self.respLen = responseLength(buf, off, len);
        let n = self.have.get(c)! + len;
        while (n >= self.respLen) {
          n -= self.respLen;
          self.done++;
          c.write(GET, 0, GET.length); // keeps going between rounds: nothing moves unless the sim steps
        }
        self.have.set(c, n);
        return len;
      },
    };
    for (let i = 0; i < CONNS; i++) this.tcp.connect(this.addr, this.port, { handler: h });
  }
}

/** Head length + Content-Length of the first response seen (every response of a run has the same length). */
function responseLength(buf: Uint8Array, off: number, len: number): number {
  const s = Buffer.from(buf.subarray(off, off + len)).toString('latin1');
  const end = s.indexOf('\r\n\r\n');
  const cl = /content-length: *(\d+)/i.exec(s);
  if (end < 0 || cl === null) throw new Error(`cannot size the response: ${JSON.stringify(s.slice(0, 200))}`);
  return end + 4 + Number(cl[1]);
}

/** nginx's part: answers each request head (CRLF CRLF, found across chunk boundaries) with the canned hello. */
function cannedUpstream(tcp: Tcp, port: number): void {
  const l = tcp.listen(port, ip4FromString(Sim.ADDR_A));
  const tails = new Map<TcpConnection, number>(); // the last four bytes seen, per connection
  const h: TcpHandler = {
    onData(c, buf, off, len) {
      let t = tails.get(c) ?? 0;
      for (let i = off; i < off + len; i++) {
        t = ((t << 8) | buf[i]!) >>> 0;
        if (t === 0x0d0a0d0a) c.write(UPSTREAM_RESPONSE, 0, UPSTREAM_RESPONSE.length);
      }
      tails.set(c, t);
      return len;
    },
  };
  l.onAcceptable = () => { for (let c = l.accept(); c !== null; c = l.accept()) { c.handler = h; c.setNoDelay(true); } };
}

/** Ticks the simulation, letting the event loop run promise and tick callbacks between ticks, until n requests are done. */
async function drive(sim: Sim, load: Load, n: number): Promise<number> {
  load.target = load.done + n;
  const c0 = process.cpuUsage();
  const start = load.done;
  let idle = 0;
  while (load.done < load.target) {
    const before = load.done;
    // Fixed ticks of the link delay: what was sent in one tick arrives together in the next, a batch per poll as
    // NAPI gives the real links. (Stepping to each next event instead lets the connections drift apart until a
    // step carries one frame, and the event loop's turn per step would be what is measured.)
    sim.clock.set(sim.now + DELAY);
    sim.pollNow();
    await new Promise<void>((r) => setImmediate(r));
    idle = load.done === before ? idle + 1 : 0;
    if (idle > 100_000) throw new Error(`stalled at ${load.done} of ${load.target}`);
  }
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / (load.done - start); // ns of this process's CPU per request

}

async function scenario(name: string, setup: (sim: Sim, a: Tcp, b: Tcp) => Promise<() => Promise<void>>): Promise<void> {
  // A small one-way delay: each exchange then needs the clock to move, so a step ends (no delay never lets pollNow() settle).
  const sim = new Sim({ seed: 1, frames: 16384, impair: { delay: DELAY } });
  const a = Tcp.attach(sim.a, { seed: 5 });
  const b = Tcp.attach(sim.b, { seed: 6 });
  const stop = await setup(sim, a, b);
  const load = new Load(a, ip4FromString(Sim.ADDR_B), 8080);
  load.start();
  await drive(sim, load, ROUND); // warm-up: connections, pools, JIT
  const per: number[] = [];
  for (let r = 0; r < 5; r++) per.push(await drive(sim, load, ROUND));
  per.sort((x, y) => x - y);
  console.log(`${name.padEnd(44)} ${(per[2]! / 1000).toFixed(2).padStart(7)} µs CPU/request  (median of 5 rounds of ${ROUND}; min ${(per[0]! / 1000).toFixed(2)}, max ${(per[4]! / 1000).toFixed(2)})`);
  await stop();
  sim.close();
}

await scenario('hello server (HttpServer, stack B)', async (_sim, _a, b) => {
  const server = new HttpServer(helloApp, {});
  await server.listen(new SimTransport(b), 8080, Sim.ADDR_B);
  // No graceful close: it would wait for connections that only a stepping simulation can end.
  return async () => { void server.close(); };
});

await scenario('node proxy -> canned upstream (both legs stack B)', async (_sim, a, b) => {
  cannedUpstream(a, 8081);
  const dir = mkdtempSync(join(tmpdir(), 'strata-l7-bench-'));
  const file = join(dir, 'proxy.yaml');
  writeFileSync(file, [
    'logging: { level: error, accessLog: { enabled: false } }',
    'listeners:',
    `  - { name: web, address: ${Sim.ADDR_B}, port: 8080, transport: tap }`,
    'clusters:',
    `  - { name: hello, transport: tap, endpoints: ["${Sim.ADDR_A}:8081"] }`,
    'routes:',
    '  - apiVersion: gateway.networking.k8s.io/v1',
    '    kind: HTTPRoute',
    '    metadata: { name: all }',
    '    spec: { parentRefs: [{ name: web }], rules: [{ backendRefs: [{ name: hello }] }] }',
    '',
  ].join('\n'));
  const transport = new SimTransport(b);
  const proxy = new NodeProxy({ file, lab: null, logger: new Logger({ level: 'error' }), out: { write() {} }, openTransport: () => Promise.resolve(transport) });
  await proxy.start();
  return async () => { await proxy.shutdownNow(); rmSync(dir, { recursive: true, force: true }); };
});
