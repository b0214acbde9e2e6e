// Zero allocations per packet on the echo's hot path: 10 million packets
// through UdpEcho over GenLink, with V8's heap statistics and the GC
// observer as witnesses (src/bench/alloc.ts). Counts and bytes, never times.
import { expect, test } from 'vitest';
import { measureEchoAllocations } from '../src/bench/alloc.js';

test('10 M packets through the TS echo pipeline: no GC in the loop, heap growth bounded', async () => {
  const r = await measureEchoAllocations({ packets: 10_000_000, burst: 64 });
  expect(r.packets).toBeGreaterThanOrEqual(10_000_000);
  // Every packet was echoed correctly, so the loop did the real work.
  expect(r.goodReplies).toBe(r.packets);
  expect(r.badReplies).toBe(0);
  // One young-generation GC needs at least ~1 MB of garbage (the smallest
  // semi-space); none in the loop means < 0.1 byte per packet.
  expect(r.gcInLoop).toEqual({ minor: 0, major: 0, incremental: 0, weakcb: 0, total: 0 });
  // A single 16-byte allocation per packet would be 160 MB; allow 1 MB for JIT bookkeeping.
  expect(r.heapGrowth).toBeLessThan(1 << 20);
});

test('the witness works: a loop that allocates per iteration shows up as GC entries', async () => {
  // A control for the test above: the same PerformanceObserver('gc') does
  // report scavenges when a loop allocates one small object per iteration,
  // so "zero GCs" above is not an observer that never fires.
  const { PerformanceObserver } = await import('node:perf_hooks');
  let gcs = 0;
  const obs = new PerformanceObserver((l) => { gcs += l.getEntries().length; });
  obs.observe({ entryTypes: ['gc'] });
  const sink: { x: number }[] = [];
  for (let i = 0; i < 5_000_000; i++) { sink[i & 1023] = { x: i }; }
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  expect(sink.length).toBe(1024);
  expect(gcs).toBeGreaterThan(0);
});
