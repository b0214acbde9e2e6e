// The stack's timer wheel (src/stack/timers.ts): arm, re-arm (the per-ACK
// retransmission timer move), cancel, and advance over a wheel holding 100k
// timers, as TCP would with 100k connections. Batched per tinybench
// iteration. Run: npx tsx bench/micro/timers.bench.ts
import { Bench } from 'tinybench';
import { Timer, TimerWheel } from '../../src/stack/timers.js';

const BATCH = 1024;
const N = 100_000;
const time = Number(process.env.BENCH_TIME_MS ?? 500);

const onFire = (): void => {}; // never advanced: these timers only move
const wheel = new TimerWheel({ tickMs: 1, slots: 4096 });
const timers: Timer[] = [];
for (let i = 0; i < N; i++) {
  const t = new Timer(onFire);
  timers.push(t);
  wheel.arm(t, 200 + (i % 60_000)); // RTO-like spread up to a minute
}
let cur = 0;
let x = 1;

// A separate wheel for advance(): a steady population where every tick fires
// some timers that re-arm themselves (like delayed ACKs and RTOs).
const adv = new TimerWheel({ tickMs: 1, slots: 4096 });
let advNow = 0;
const advTimers: Timer[] = [];
for (let i = 0; i < N; i++) {
  const t: Timer = new Timer((now) => { adv.arm(t, now + 40 + (i % 200)); });
  advTimers.push(t);
  adv.arm(t, 1 + (i % 240));
}

const bench = new Bench({ time, warmupTime: 100 });
bench
  .add('re-arm (move an armed timer)', () => {
    for (let k = 0; k < BATCH; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      wheel.arm(timers[cur]!, 200 + (x % 60_000));
      cur = cur + 1 === N ? 0 : cur + 1;
    }
  })
  .add('cancel + arm', () => {
    for (let k = 0; k < BATCH; k++) {
      const t = timers[cur]!;
      wheel.cancel(t);
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      wheel.arm(t, 200 + (x % 60_000));
      cur = cur + 1 === N ? 0 : cur + 1;
    }
  })
  .add('nextExpiry (after a re-arm)', () => {
    for (let k = 0; k < BATCH; k++) {
      wheel.arm(timers[cur]!, 200 + (cur % 60_000));
      cur = cur + 1 === N ? 0 : cur + 1;
      wheel.nextExpiry();
    }
  });

// advance() is measured per 1 ms tick: ops = ticks, with ~N/140 timers firing per tick.
const advBench = new Bench({ time, warmupTime: 100 });
advBench.add('advance 1 ms (≈700 fire and re-arm)', () => {
  advNow += 1;
  adv.advance(advNow);
});

await bench.run();
await advBench.run();
const row = (name: string, r: (typeof bench.tasks)[number]['result'], batch: number): Record<string, string | number> => {
  if (r.state !== 'completed') return { task: name, state: r.state };
  const ops = r.throughput.mean * batch;
  return { task: name, 'ops/s': Math.round(ops).toLocaleString('en-US'), 'ns/op': (1e9 / ops).toFixed(1), '±%': r.throughput.rme.toFixed(2), samples: r.latency.samplesCount };
};
console.log(`timer wheel, ${N.toLocaleString('en-US')} armed timers per wheel (${wheel.size} / ${adv.size} armed at the end)`);
console.table([
  ...bench.tasks.map((t) => row(t.name, t.result, BATCH)),
  ...advBench.tasks.map((t) => row(t.name, t.result, 1)),
]);
