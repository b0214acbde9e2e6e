// Proof that the urgent pointer's receive path allocates nothing (RFC 9293
// §3.10.7.4 sixth: RCV.UP, the MUST-32 signal, urgentPending): URG segments
// that each advance the pointer, then the same pointers again, with sequence
// numbers above 2^31 (heap numbers, not small integers), in one synchronous
// loop after a warm-up. The witnesses of conntrack-alloc.test.ts: V8's used
// heap before and after, and no GC starting inside the loop; no time is
// asserted. The exact segments are checked in stack-tcp-state.test.ts.
import { describe, expect, it } from 'vitest';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { Tcp } from '../src/stack/tcp/tcp.js';
import type { TcpConnection } from '../src/stack/tcp/connection.js';
import type { NetworkWriter } from '../src/stack/registration.js';
import { buildSegment } from '../src/stack/tcp/testing.js';
import { FLAG, TCP, rd32, wr16, wr32 } from '../src/stack/wire/tcp.js';
import { finish, pseudo4, sum16 } from '../src/stack/wire/checksum.js';

const LOCAL = 0x0a000002;
const REMOTE = 0x0a000001;

/** A NetworkWriter into one fixed frame that keeps nothing: the stack's replies cost no allocation here. */
class NullWriter implements NetworkWriter {
  readonly mem = new Uint8Array(2048);
  readonly src = LOCAL;
  readonly room = 1480;
  begin(): number { return 64; }
  commit(): boolean { return true; }
  abort(): void {}
  pathMtu(): number { return 1500; }
  isLocal(a: number): boolean { return a === LOCAL; }
  sourceFor(): number { return LOCAL; }
}

describe('urgent data: no allocation per segment', () => {
  // The pointer's path alone: pure ACKs with URG, so no data is copied into
  // the receive ring (ByteRing.writeAt takes a subarray view per data
  // segment, which this test is not about).
  it('URG segments are taken and signalled (and ones that do not advance the pointer ignored) without allocating', () => {
    const w = new NullWriter();
    const tcp = new Tcp(w, { seed: 5, config: { timestamps: false } });
    let urgentCalls = 0;
    // The sum passes 2^31: kept in a typed array, as a closure variable it would box a number per call.
    const sum = new Float64Array(1);
    let bytes = 0;
    let conn: TcpConnection | null = null;
    const l = tcp.listen(80);
    const handler = {
      onUrgent(_c: TcpConnection, pending: number): void { urgentCalls++; sum[0]! += pending; },
      onData(_c: TcpConnection, _b: Uint8Array, _o: number, len: number): number { bytes += len; return len; },
    };
    l.onAcceptable = () => { conn = l.accept(handler); };
    // Sequence numbers above 2^31 (heap numbers, not small integers) on the peer's side.
    const isn = 0x90000000;
    const syn = buildSegment({ src: REMOTE, dst: LOCAL, sport: 40000, dport: 80, seq: isn, flags: FLAG.SYN, mss: 1460 });
    tcp.deliver(REMOTE, LOCAL, syn, 0, syn.length, 0);
    const iss = rd32(w.mem, 64 + TCP.SEQ);
    const ack = buildSegment({ src: REMOTE, dst: LOCAL, sport: 40000, dport: 80, seq: isn + 1, ack: iss + 1, flags: FLAG.ACK });
    tcp.deliver(REMOTE, LOCAL, ack, 0, ack.length, 0);
    expect(conn).not.toBeNull();
    // Templates re-stamped in place (SEQ, pointer, checksum).
    const urg = buildSegment({ src: REMOTE, dst: LOCAL, sport: 40000, dport: 80, seq: 0, ack: iss + 1, flags: FLAG.ACK | FLAG.URG, urgent: 1 });
    const N = 60_000;
    const dat = buildSegment({ src: REMOTE, dst: LOCAL, sport: 40000, dport: 80, seq: 0, ack: iss + 1, flags: FLAG.ACK | FLAG.PSH, payload: new Uint8Array(N) });
    let seq = isn + 1;
    const stamp = (b: Uint8Array, sq: number, up: number): void => {
      wr32(b, TCP.SEQ, sq);
      wr16(b, TCP.URGENT, up);
      wr16(b, TCP.CHECKSUM, 0);
      wr16(b, TCP.CHECKSUM, finish(sum16(b, 0, b.length, pseudo4(REMOTE, LOCAL, 6, b.length))));
      tcp.deliver(REMOTE, LOCAL, b, 0, b.length, 1);
    };
    // A round: each pointer one further than the last (a signal each), the same pointers again (none),
    // then the data they pointed past, which the application reads (one segment: the ring's copy is
    // not what is measured here).
    const run = (rounds: number): void => {
      for (let r = 0; r < rounds; r++) {
        for (let up = 1; up <= N; up++) stamp(urg, seq, up);
        for (let up = 1; up <= N; up++) stamp(urg, seq, up);
        stamp(dat, seq, 0);
        seq = (seq + N) >>> 0;
      }
    };
    run(2); // warm-up: let the JIT settle
    const warm = { urgentCalls, pendingSum: sum[0]!, bytes, urgentPending: conn!.urgentPending };
    expect(warm).toEqual({ urgentCalls: 2 * N, pendingSum: N * (N + 1), bytes: 2 * N, urgentPending: 0 });
    const gcs: number[] = [];
    const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push(e.startTime); });
    obs.observe({ entryTypes: ['gc'] });
    const ROUNDS = 8;
    const heap0 = v8.getHeapStatistics().used_heap_size;
    const tStart = performance.now();
    run(ROUNDS);
    const tEnd = performance.now();
    const heap1 = v8.getHeapStatistics().used_heap_size;
    return new Promise<void>((resolve, reject) => setTimeout(() => {
      obs.disconnect();
      try {
        expect(urgentCalls - warm.urgentCalls).toBe(ROUNDS * N);
        expect(sum[0]! - warm.pendingSum).toBe((ROUNDS * N * (N + 1)) / 2);
        expect(bytes - warm.bytes).toBe(ROUNDS * N); // inline, every byte
        expect(conn!.urgentPending).toBe(0);
        expect(tcp.counters.urgSegsIn).toBe((2 + ROUNDS) * 2 * N);
        expect(gcs.filter((t) => t >= tStart && t <= tEnd).length).toBe(0);
        const segments = ROUNDS * (2 * N + 1);
        expect((heap1 - heap0) / segments).toBeLessThan(0.5); // < half a byte per segment: nothing per segment
        resolve();
      } catch (e) { reject(e); }
    }, 50));
  });
});
