// HTTP/1.1 parser and serializer cost: a typical small keep-alive GET (what
// wrk sends), a pipelined batch of 16 of them in one buffer, a chunked POST,
// the same GET fed in two pieces (a header straddles the boundary), and
// writing a small "hello" response. Each tinybench iteration runs a batch so
// the timer's own cost stays out of the per-message figure. Node's own
// llhttp binding is measured next to ours on the same GET when the runtime
// still exposes it (process.binding is deprecated; skipped if it is gone).
// Run: npx tsx bench/micro/http-parse.bench.ts
import { Bench } from 'tinybench';
import { Cb, Errno, Http1Parser, Http1Writer, ParserType, writeResponse } from '../../src/l7/http1/index.js';

const BATCH = 256;
const time = Number(process.env.BENCH_TIME_MS ?? 500);
const enc = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

const GET = enc(
  'GET /index.html?user=alice HTTP/1.1\r\n' +
  'Host: 10.200.0.3:8080\r\n' +
  'User-Agent: wrk/4.2.0\r\n' +
  'Accept: */*\r\n' +
  'Accept-Encoding: gzip, deflate\r\n' +
  'Connection: keep-alive\r\n\r\n',
);
const PIPELINED = new Uint8Array(GET.length * 16);
for (let i = 0; i < 16; i++) PIPELINED.set(GET, i * GET.length);
const POST = enc(
  'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n' +
  '400\r\n' + 'x'.repeat(1024) + '\r\n400\r\n' + 'y'.repeat(1024) + '\r\n0\r\n\r\n',
);
const SPLIT_AT = 60; // inside the User-Agent value

// A handler like a server's: keeps the URL span and looks at a few headers by length.
class Sink {
  urlLen = 0;
  headers = 0;
  bodyBytes = 0;
  messages = 0;
  onUrl(_b: Uint8Array, s: number, e: number): void { this.urlLen = e - s; }
  onHeader(_n: Uint8Array, ns: number, ne: number): void { if (ne - ns === 4) this.headers++; else this.headers += 2; }
  onHeadersComplete(): number { return Cb.OK; }
  onBody(_b: Uint8Array, s: number, e: number): void { this.bodyBytes += e - s; }
  onMessageComplete(): void { this.messages++; }
}

const sink = new Sink();
const parser = new Http1Parser(ParserType.REQUEST, sink);
function check(): void {
  if (parser.errno !== Errno.OK) throw new Error(`parse error ${parser.errno}: ${parser.reason}`);
}

const w = new Http1Writer();
const HELLO = enc('hello world\n');
const HEADERS = [['Content-Type', 'text/plain'], ['Date', 'Wed, 25 Nov 2026 14:00:00 GMT']] as const;

type LlhttpCtor = new () => {
  initialize(type: number, resource: object): void;
  execute(b: Buffer): number | Error;
  [k: number]: unknown;
};
let llhttp: { parser: InstanceType<LlhttpCtor>; buf: Buffer } | null = null;
try {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const binding = (process as any).binding('http_parser') as { HTTPParser: LlhttpCtor & { REQUEST: number; kOnHeadersComplete: number; kOnMessageComplete: number; kOnExecute: number } };
  const P = binding.HTTPParser;
  const lp = new P();
  lp.initialize(P.REQUEST, {});
  lp[P.kOnHeadersComplete] = () => 0;
  lp[P.kOnMessageComplete] = () => {};
  llhttp = { parser: lp, buf: Buffer.from(GET) };
} catch {
  llhttp = null;
}

const bench = new Bench({ time, warmupTime: 100 });
bench
  .add('parse small GET (strata)', () => {
    for (let k = 0; k < BATCH; k++) parser.feed(GET, 0, GET.length);
    check();
  })
  .add('parse pipelined batch, 16 GETs per feed (strata, per message)', () => {
    for (let k = 0; k < BATCH / 16; k++) parser.feed(PIPELINED, 0, PIPELINED.length);
    check();
  })
  .add('parse small GET split in two feeds (strata)', () => {
    for (let k = 0; k < BATCH; k++) {
      parser.feed(GET, 0, SPLIT_AT);
      parser.feed(GET, SPLIT_AT, GET.length - SPLIT_AT);
    }
    check();
  })
  .add('parse chunked POST, 2 KiB body (strata)', () => {
    for (let k = 0; k < BATCH; k++) parser.feed(POST, 0, POST.length);
    check();
  })
  .add('write hello response (strata)', () => {
    for (let k = 0; k < BATCH; k++) {
      writeResponse(w, { status: 200, headers: HEADERS, body: HELLO });
      w.drain();
    }
  });
if (llhttp) {
  const l = llhttp;
  bench.add('parse small GET (node llhttp binding, reference)', () => {
    for (let k = 0; k < BATCH; k++) l.parser.execute(l.buf);
  });
}

await bench.run();
const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  const ops = r.throughput.mean * BATCH;
  return { task: t.name, 'msgs/s': Math.round(ops).toLocaleString('en-US'), 'ns/msg': (1e9 / ops).toFixed(1), '±%': r.throughput.rme.toFixed(2), samples: r.latency.samplesCount };
});
console.log(`http1 parser/serializer (GET ${GET.length} bytes; ${sink.messages.toLocaleString('en-US')} messages parsed)`);
console.table(rows);
