// Conntrack lookup cost at 100k entries: hits (ESTABLISHED TCP ACKs in both
// directions), misses (UDP to unknown tuples, which insert: measured with a
// churn that keeps the table at its bound) and pure index lookups. Each
// tinybench iteration runs a batch so the timer's own cost stays out of the
// per-packet figure. Run: npx tsx bench/micro/conntrack.bench.ts
import { Bench } from 'tinybench';
import { Conntrack, CT_HOOK, TCPF } from '../../src/stack/conntrack/index.js';
import { IPPROTO } from '../../src/stack/registration.js';

const BATCH = 1024;
const N = 100_000;
const time = Number(process.env.BENCH_TIME_MS ?? 500);

const ct = new Conntrack({ maxEntries: 131072 });
const S = 0x0ac80003;
const src = (i: number): number => (0x0a000000 + (i >>> 14)) >>> 0;
const sp = (i: number): number => 1024 + (i & 16383);
const p = ct.pkt;
function seg(a: number, b: number, x: number, y: number, flags: number, seq: number, ack: number, now: number): number {
  p.proto = IPPROTO.TCP; p.src = a; p.dst = b; p.sport = x; p.dport = y; p.flags = flags; p.seq = seq; p.ack = ack;
  p.win = 65535; p.wscale = -1; p.payloadLen = 0; p.ipLen = 40; p.related = false; p.icmpType = -1;
  return ct.trackPacket(p, CT_HOOK.IN, now);
}
for (let i = 0; i < N; i++) {
  seg(src(i), S, sp(i), 80, TCPF.SYN, 100, 0, 0);
  seg(S, src(i), 80, sp(i), TCPF.SYN | TCPF.ACK, 500, 101, 0);
  seg(src(i), S, sp(i), 80, TCPF.ACK, 101, 501, 0);
}
if (ct.size !== N) throw new Error(`setup: ${ct.size} entries`);

// A pseudo-random visiting order so lookups do not walk memory in order.
const order = new Uint32Array(N);
for (let i = 0, x = 12345; i < N; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; order[i] = x % N; }
let cur = 0;
let now = 1;
let missPort = 0;

const bench = new Bench({ time, warmupTime: 100 });
bench
  .add('track hit (TCP ACK, both directions)', () => {
    for (let k = 0; k < BATCH; k++) {
      const i = order[cur]!;
      cur = cur + 1 === N ? 0 : cur + 1;
      if (k & 1) seg(S, src(i), 80, sp(i), TCPF.ACK, 501, 101, now);
      else seg(src(i), S, sp(i), 80, TCPF.ACK, 101, 501, now);
    }
    now++;
  })
  .add('lookup hit (index only)', () => {
    for (let k = 0; k < BATCH; k++) {
      const i = order[cur]!;
      cur = cur + 1 === N ? 0 : cur + 1;
      ct.lookup(IPPROTO.TCP, src(i), S, sp(i), 80);
    }
  })
  .add('lookup miss (index only)', () => {
    for (let k = 0; k < BATCH; k++) {
      const i = order[cur]!;
      cur = cur + 1 === N ? 0 : cur + 1;
      ct.lookup(IPPROTO.TCP, src(i), S, sp(i), 81);
    }
  })
  .add('track miss → insert (UDP, table at bound: evicts)', () => {
    for (let k = 0; k < BATCH; k++) {
      missPort = (missPort + 1) & 0xffff;
      p.proto = IPPROTO.UDP; p.src = 0x0b000000 + (missPort >>> 8); p.dst = S; p.sport = missPort; p.dport = 53;
      p.ipLen = 100; p.related = false; p.icmpType = -1;
      ct.trackPacket(p, CT_HOOK.IN, now);
    }
    now++;
  });

await bench.run();
const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  const ops = r.throughput.mean * BATCH;
  return { task: t.name, 'ops/s': Math.round(ops).toLocaleString('en-US'), 'ns/op': (1e9 / ops).toFixed(1), '±%': r.throughput.rme.toFixed(2), samples: r.latency.samplesCount };
});
console.log(`conntrack at ${N.toLocaleString('en-US')} entries (table ${ct.size.toLocaleString('en-US')} at the end, ${ct.stats.evictions} evictions)`);
console.table(rows);
