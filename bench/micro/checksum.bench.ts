// The Internet checksum (src/stack/wire/checksum.ts): sum16 over a 64-byte
// header-sized span and a 1500-byte MTU frame, finish(), and the RFC 1624
// incremental update16/update32 used when rewriting one field. Batched per
// tinybench iteration. Run: npx tsx bench/micro/checksum.bench.ts
import { Bench } from 'tinybench';
import { finish, sum16, update16, update32 } from '../../src/stack/wire/checksum.js';

const BATCH = 256;
const time = Number(process.env.BENCH_TIME_MS ?? 500);

const frame = new Uint8Array(1500);
for (let i = 0; i < frame.length; i++) frame[i] = (i * 131 + 7) & 255;
let sink = 0;
let v = 1;

const bench = new Bench({ time, warmupTime: 100 });
bench
  .add('sum16 + finish, 64 B', () => {
    for (let k = 0; k < BATCH; k++) sink ^= finish(sum16(frame, k & 7, 64));
  })
  .add('sum16 + finish, 1500 B', () => {
    for (let k = 0; k < BATCH; k++) sink ^= finish(sum16(frame, 0, 1500 - (k & 1)));
  })
  .add('update16 (one 16-bit field)', () => {
    for (let k = 0; k < BATCH; k++) { v = (v + 0x9e37) & 0xffff; sink = update16(sink & 0xffff, v, v ^ 0x5a5a); }
  })
  .add('update32 (an address or sequence number)', () => {
    for (let k = 0; k < BATCH; k++) { v = (v * 69069 + 1) >>> 0; sink = update32(sink & 0xffff, v, v ^ 0x0a0a0a0a); }
  });

await bench.run();
console.table(bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  const ops = r.throughput.mean * BATCH;
  const row: Record<string, string | number> = { task: t.name, 'ops/s': Math.round(ops).toLocaleString('en-US'), 'ns/op': (1e9 / ops).toFixed(1), '±%': r.throughput.rme.toFixed(2), samples: r.latency.samplesCount };
  if (t.name.includes('1500')) row['Gbit/s'] = ((ops * 1500 * 8) / 1e9).toFixed(2);
  return row;
}));
if (sink === 0.5) console.log(sink); // keep the results observable
