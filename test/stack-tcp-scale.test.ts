// Many connections on the simulated path: concurrency, churn without leaks,
// and a SYN flood that SYN cookies absorb while a legitimate client still
// gets through. Deterministic (seeded), virtual clock.
import { describe, expect, it } from 'vitest';
import { LoopNet, buildSegment } from '../src/stack/tcp/testing.js';
import type { TcpConnection, TcpHandler } from '../src/stack/tcp/connection.js';
import { FLAG } from '../src/stack/wire/tcp.js';
import { Prng } from '../src/util/prng.js';

const A = 0x0a000001, B = 0x0a000002;

/** Echo server handler: writes back what it reads, ends when the peer ends. */
function echoHandler(): TcpHandler {
  return {
    onData: (c, buf, off, len) => c.write(buf, off, len),
    onEnd: (c) => c.end(),
  };
}

describe('scale', () => {
  it('2000 concurrent connections each echo their own message', () => {
    const net = new LoopNet(21, { delay: 2, jitter: 1 });
    const a = net.add(A, { config: { timeWaitMs: 1000 } });
    const b = net.add(B, { config: { timeWaitMs: 1000 } });
    const l = b.tcp.listen(7, 0, 4096);
    l.onAcceptable = () => { for (let c = l.accept(echoHandler()); c !== null; c = l.accept(echoHandler())) { /* accepted */ } };
    const N = 2000;
    const replies = new Map<number, string>();
    for (let i = 0; i < N; i++) {
      const msg = `hello from ${i}`;
      let got = '';
      a.tcp.connect(B, 7, {
        handler: {
          onConnect: (c) => { c.write(Buffer.from(msg)); c.end(); },
          onData: (_c, buf, off, len) => { got += Buffer.from(buf.subarray(off, off + len)).toString(); return len; },
          onEnd: () => { replies.set(i, got); },
        },
      });
    }
    expect(a.tcp.counters.connections).toBe(N);
    expect(net.run(() => replies.size === N, 60_000)).toBe(true);
    for (let i = 0; i < N; i++) expect(replies.get(i)).toBe(`hello from ${i}`);
    expect(b.tcp.counters.passiveOpens).toBe(N);
    net.run(() => a.tcp.counters.connections + b.tcp.counters.connections === 0, net.now + 5000);
    expect(a.tcp.counters.connections + b.tcp.counters.connections).toBe(0);
  });

  it('5000 sequential short connections leave nothing behind', () => {
    const net = new LoopNet(22, { delay: 1, loss: 0.01 });
    const a = net.add(A, { config: { timeWaitMs: 500 } });
    const b = net.add(B, { config: { timeWaitMs: 500 } });
    const l = b.tcp.listen(80);
    l.onAcceptable = () => { l.accept(echoHandler()); };
    let done = 0;
    const N = 5000;
    const one = (): void => {
      a.tcp.connect(B, 80, {
        handler: {
          onConnect: (c) => { c.write(Buffer.from('ping')); c.end(); },
          onData: (_c, _b, _o, len) => len,
          onClose: () => { done++; if (done < N) one(); },
        },
      });
    };
    one();
    expect(net.run(() => done === N, 3_600_000)).toBe(true);
    net.run(() => b.tcp.counters.connections === 0 && a.tcp.counters.connections === 0, net.now + 5000);
    expect(a.tcp.counters.connections).toBe(0);
    expect(b.tcp.counters.connections).toBe(0);
    expect(l.synQueued).toBe(0);
    expect(l.acceptQueue.length).toBe(0);
    expect(b.tcp.counters.currEstab).toBe(0);
    expect(a.tcp.counters.currEstab).toBe(0);
    expect(b.tcp.timers.size).toBe(0); // every per-connection timer was cancelled
  });

  it('a 20,000-SYN flood from random sources fills the SYN queue; cookies keep a real client working', () => {
    const net = new LoopNet(23, { delay: 1 });
    const a = net.add(A);
    const b = net.add(B, { config: { synBacklog: 128 } });
    const l = b.tcp.listen(443, 0, 128);
    const served: TcpConnection[] = [];
    l.onAcceptable = () => { for (let c = l.accept(echoHandler()); c !== null; c = l.accept(echoHandler())) served.push(c); };
    const p = new Prng(99);
    const flood = (n: number): void => {
      for (let i = 0; i < n; i++) {
        const src = (0x0b000000 | p.int(0xffffff)) >>> 0;
        const seg = buildSegment({ src, dst: B, sport: 1024 + p.int(60000), dport: 443, seq: p.u32(), flags: FLAG.SYN, mss: 1460, ts: [p.u32(), 0], sackPermitted: true, wscale: 7 });
        b.tcp.deliver(src, B, seg, 0, seg.length, net.now);
      }
    };
    flood(10_000);
    expect(l.synQueued).toBe(128);
    // The legitimate client connects in the middle of the flood.
    let echoed = '';
    a.tcp.connect(B, 443, {
      handler: {
        onConnect: (c) => { flood(10_000); c.write(Buffer.from('real')); c.end(); },
        onData: (_c, buf, off, len) => { echoed += Buffer.from(buf.subarray(off, off + len)).toString(); return len; },
      },
    });
    expect(net.run(() => echoed === 'real', 30_000)).toBe(true);
    const k = b.tcp.counters;
    expect(k.cookiesSent).toBeGreaterThanOrEqual(19_000);
    expect(k.cookiesValidated).toBe(1);
    expect(served.length).toBe(1);
    // The half-open entries from the flood time out (SYN-ACK retries) and the queue drains.
    net.run(() => l.synQueued === 0, net.now + 120_000);
    expect(l.synQueued).toBe(0);
  });
});
