// Issue 3 acceptance, integrity under impairments the kernel lab cannot
// inject: two full Stacks (Ethernet, ARP, IPv4, TCP) over a MemLink pair on
// a virtual clock (Sim), with seeded loss, reordering, duplication, jitter
// and bit corruption in both directions. STRATA_ACCEPT_SIM_BYTES (default
// 64 MiB) move in EACH direction at once over one connection; both SHA-256s
// must match, the corruption must have been caught (checksums) rather than
// delivered, and afterwards nothing is left in either stack.
//
// Same seed, same run: a failure names its seed; reproduce it with
//   STRATA_ACCEPT_SIM_SEEDS=<seed> npx vitest run test/stack-accept-sim.test.ts
// STRATA_ACCEPT_SIM_SEEDS also takes a list (1,2,3) or a count (n:8).
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { Sim } from '../src/stack/sim.js';
import { Tcp } from '../src/stack/tcp/tcp.js';
import type { TcpConnection, TcpHandler } from '../src/stack/tcp/connection.js';
import { ip4FromString } from '../src/stack/registration.js';
import type { Impairments } from '../src/link/mem.js';
import { KeyStream, streamSha } from './helpers/stack-host.js';

const MiB = 1024 * 1024;
const N = Number(process.env.STRATA_ACCEPT_SIM_BYTES ?? 64 * MiB);

function seeds(): number[] {
  const v = process.env.STRATA_ACCEPT_SIM_SEEDS;
  if (v === undefined) return [101, 202];
  if (v.startsWith('n:')) return Array.from({ length: Number(v.slice(2)) }, (_, i) => 101 * (i + 1));
  return v.split(',').map(Number);
}

/** Hostile both ways: every impairment MemLink has. */
const HOSTILE: Impairments = { loss: 0.01, duplicate: 0.01, reorder: 0.02, reorderDelay: 3, delay: 2, jitter: 1, corrupt: 0.005 };

interface End { sent: number; got: number; hash: ReturnType<typeof createHash>; sha: string; closed: boolean; err: unknown }

/** A handler that sends n bytes of KeyStream(seed) as the window allows, then FIN, and hashes what it receives. */
function bulk(seed: number, n: number, e: End): TcpHandler {
  const ks = new KeyStream(seed);
  let chunk: Buffer = Buffer.alloc(0);
  let at = 0;
  const pump = (c: TcpConnection): void => {
    while (e.sent < n) {
      if (at === chunk.length) { chunk = ks.next(Math.min(64 * 1024, n - e.sent)); at = 0; }
      const w = c.write(chunk, at, chunk.length - at);
      if (w === 0) return;
      at += w;
      e.sent += w;
    }
    c.end();
  };
  return {
    onConnect: pump,
    onDrain: pump,
    onData: (_c, buf, off, len) => { e.hash.update(buf.subarray(off, off + len)); e.got += len; return len; },
    onEnd: () => { e.sha = e.hash.digest('hex'); },
    onClose: (_c, err) => { e.closed = true; e.err = err; },
  };
}

const newEnd = (): End => ({ sent: 0, got: 0, hash: createHash('sha256'), sha: '', closed: false, err: null });

describe(`two stacks over MemLink under seeded impairments (${N} bytes each way)`, () => {
  it.each(seeds())('seed %i: loss, reordering, duplication, jitter and corruption both ways; SHA-256 match both ways', (seed) => {
    const sim = new Sim({ seed, impair: HOSTILE, frames: 8192 });
    try {
      const cfg = { timeWaitMs: 2000, sendBuffer: 1 * MiB, recvBuffer: 1 * MiB };
      const ta = Tcp.attach(sim.a, { seed: seed * 3 + 1, config: cfg });
      const tb = Tcp.attach(sim.b, { seed: seed * 3 + 2, config: cfg });
      const ea = newEnd(), eb = newEnd();
      const l = tb.listen(9000);
      const hb = bulk(2, N, eb);
      l.onAcceptable = () => { for (let c = l.accept(hb); c !== null; c = l.accept(hb)) hb.onConnect!(c); };
      const ca = ta.connect(ip4FromString(Sim.ADDR_B), 9000, { handler: bulk(1, N, ea) });
      // Virtual time: a generous bound that still catches a stalled connection.
      const ok = sim.runUntil(() => ea.closed && eb.closed, 3_600_000);
      const why = `seed ${seed}; reproduce: STRATA_ACCEPT_SIM_SEEDS=${seed} npx vitest run test/stack-accept-sim.test.ts; ` +
        `t=${sim.now} a=${JSON.stringify(ca.info())} links=${JSON.stringify([sim.linkA.stats(), sim.linkB.stats()])}`;
      expect(ok, why).toBe(true);
      expect(ea.err, why).toBeNull();
      expect(eb.err, why).toBeNull();
      expect(eb.got, why).toBe(N);
      expect(ea.got, why).toBe(N);
      expect(eb.sha, why).toBe(streamSha(1, N));
      expect(ea.sha, why).toBe(streamSha(2, N));
      // The path really was hostile, and the damage was caught, not delivered.
      const [sa, sb] = [sim.linkA.stats(), sim.linkB.stats()];
      expect(sa.lost + sb.lost, why).toBeGreaterThan(0);
      expect(sa.duplicated + sb.duplicated, why).toBeGreaterThan(0);
      expect(sa.reordered + sb.reordered, why).toBeGreaterThan(0);
      expect(sa.corrupted + sb.corrupted, why).toBeGreaterThan(0);
      // A flipped bit lands in the Ethernet, IP or TCP part of a frame: one of these drops it.
      const caught = ta.counters.drop('BAD_CHECKSUM') + tb.counters.drop('BAD_CHECKSUM') + sim.a.stats.snapshot().dropsTotal + sim.b.stats.snapshot().dropsTotal;
      expect(caught, why).toBeGreaterThan(0);
      expect(ca.retransmits, why).toBeGreaterThan(0);
      // TIME-WAIT runs out: both connection tables empty, no frames held.
      sim.runUntil(() => ta.counters.connections === 0 && tb.counters.connections === 0, 10_000);
      expect(ta.counters.connections, why).toBe(0);
      expect(tb.counters.connections, why).toBe(0);
      expect(sim.a.framesHeld() + sim.b.framesHeld(), why).toBe(0);
    } finally {
      sim.close();
    }
  }, 600_000);
});
