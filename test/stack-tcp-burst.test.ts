// Receive-burst batching (deliverBegin/deliverEnd, src/stack/registration.ts)
// as packet traces: inside a burst, in-order data is ACKed and handed to the
// application once per connection at the burst's end (Linux's GRO effect);
// out-of-order data, and the segment that fills the last hole, are answered
// at once with SACK, exactly as without a burst (RFC 5681 §4.2). The stack is
// one Tcp endpoint whose writer records what it sends; the test is the peer.
import { describe, expect, it } from 'vitest';
import { Tcp } from '../src/stack/tcp/tcp.js';
import type { TcpConnection } from '../src/stack/tcp/connection.js';
import { CaptureWriter, buildSegment, type SegmentSpec, type SegmentView } from '../src/stack/tcp/testing.js';
import { FLAG } from '../src/stack/wire/tcp.js';

const LOCAL = 0x0a000002;
const REMOTE = 0x0a000001;
const LPORT = 80;
const RPORT = 40000;
const PEER_ISN = 1000;
const MSS = 1448; // 1460 minus the timestamp option
const { SYN, ACK, PSH } = FLAG;

class Peer {
  readonly w = new CaptureWriter(LOCAL);
  readonly tcp = new Tcp(this.w, { seed: 7 });
  now = 0;
  seq = PEER_ISN;
  ack = 0;
  tsVal = 100;
  stackTs = 0;
  conn: TcpConnection | null = null;
  /** Sizes of the application's onData calls. */
  reads: number[] = [];
  throwOnData = false;

  constructor() {
    const l = this.tcp.listen(LPORT);
    l.onAcceptable = () => {
      this.conn = l.accept({
        onData: (_c, _buf, _off, len) => {
          if (this.throwOnData) { this.throwOnData = false; throw new Error('application bug'); }
          this.reads.push(len);
          return len;
        },
      });
    };
    this.send({ flags: SYN, mss: 1460, wscale: 7, sackPermitted: true, ts: [this.tsVal, 0] });
    const synack = this.take()[0]!;
    expect(synack.f).toBe('S.');
    this.ack = synack.seq + 1;
    this.seq = PEER_ISN + 1;
    this.tsVal++;
    this.send({ flags: ACK });
    expect(this.take()).toEqual([]);
    expect(this.conn!.state).toBe('ESTABLISHED');
  }

  send(s: Partial<SegmentSpec> & { flags: number }): void {
    const b = buildSegment({
      src: REMOTE, dst: LOCAL, sport: RPORT, dport: LPORT, seq: this.seq, ack: this.ack, wnd: 65535,
      ts: [this.tsVal, this.stackTs], ...s,
    });
    this.tcp.deliver(REMOTE, LOCAL, b, 0, b.length, this.now);
  }

  /** Full-sized data segment number k (0-based) after the handshake. */
  segment(k: number): void {
    this.send({ flags: ACK | PSH, seq: PEER_ISN + 1 + k * MSS, payload: new Uint8Array(MSS).fill(k & 255) });
  }

  take(): SegmentView[] {
    const got = this.w.take();
    for (const s of got) if (s.ts) this.stackTs = s.ts[0];
    return got;
  }
}

const start = PEER_ISN + 1;

describe('TCP input in receive bursts', () => {
  it('outside a burst: every second full-sized segment is ACKed and each is handed over on arrival (unchanged)', () => {
    const p = new Peer();
    for (let k = 0; k < 10; k++) p.segment(k);
    const acks = p.take();
    expect(acks.map((a) => a.ack)).toEqual([2, 4, 6, 8, 10].map((k) => start + k * MSS));
    // Each segment reaches the application as it arrives (split where the receive ring wraps).
    expect(p.reads.length).toBeGreaterThanOrEqual(10);
    expect(p.reads.reduce((a, b) => a + b, 0)).toBe(10 * MSS);
  });

  it('in a burst: in-order data gets one ACK and one hand-off, at the burst end', () => {
    const p = new Peer();
    p.tcp.deliverBegin();
    for (let k = 0; k < 10; k++) p.segment(k);
    expect(p.take()).toEqual([]);
    expect(p.reads).toEqual([]);
    p.tcp.deliverEnd(p.now, false);
    const acks = p.take();
    expect(acks).toHaveLength(1);
    expect(acks[0]!.f).toBe('.');
    expect(acks[0]!.ack).toBe(start + 10 * MSS);
    expect(acks[0]!.sack).toEqual([]);
    expect(p.reads.reduce((a, b) => a + b, 0)).toBe(10 * MSS);
    expect(p.reads.length).toBeLessThanOrEqual(2); // one hand-off (two pieces if the receive ring wraps)
    expect(p.conn!.readable).toBe(0);
  });

  it('in a burst: each out-of-order segment is answered at once with SACK, and so is the segment that fills the hole', () => {
    const p = new Peer();
    p.tcp.deliverBegin();
    p.segment(0);
    p.segment(1);
    expect(p.take()).toEqual([]); // in order: deferred
    p.segment(3); // segment 2 lost
    const d1 = p.take();
    expect(d1).toHaveLength(1);
    expect(d1[0]!.ack).toBe(start + 2 * MSS);
    expect(d1[0]!.sack).toEqual([[start + 3 * MSS, start + 4 * MSS]]);
    p.segment(4);
    const d2 = p.take();
    expect(d2).toHaveLength(1);
    expect(d2[0]!.ack).toBe(start + 2 * MSS);
    expect(d2[0]!.sack).toEqual([[start + 3 * MSS, start + 5 * MSS]]);
    p.segment(2); // the retransmission fills the hole
    const full = p.take();
    expect(full).toHaveLength(1);
    expect(full[0]!.ack).toBe(start + 5 * MSS);
    expect(full[0]!.sack).toEqual([]);
    p.segment(5); // in order again: deferred to the end
    p.segment(6);
    expect(p.take()).toEqual([]);
    p.tcp.deliverEnd(p.now, false);
    const end = p.take();
    expect(end.map((a) => a.ack)).toEqual([start + 7 * MSS]);
    expect(p.reads.reduce((a, b) => a + b, 0)).toBe(7 * MSS);
  });

  it('deliverEnd(now, true) (a caller unwinding from an exception) leaves the work to the next poll', () => {
    const p = new Peer();
    p.tcp.deliverBegin();
    for (let k = 0; k < 4; k++) p.segment(k);
    p.tcp.deliverEnd(p.now, true);
    expect(p.take()).toEqual([]);
    expect(p.reads).toEqual([]);
    expect(p.tcp.pollAt()).toBe(p.now); // asks for a poll at once
    p.tcp.poll(p.now);
    expect(p.take().map((a) => a.ack)).toEqual([start + 4 * MSS]);
    expect(p.reads.reduce((a, b) => a + b, 0)).toBe(4 * MSS);
  });

  it('an application callback that throws at the burst end propagates; the deferred work is not lost', () => {
    const p = new Peer();
    p.tcp.deliverBegin();
    for (let k = 0; k < 4; k++) p.segment(k);
    p.throwOnData = true;
    expect(() => p.tcp.deliverEnd(p.now, false)).toThrow('application bug');
    p.tcp.poll(p.now);
    expect(p.reads.reduce((a, b) => a + b, 0)).toBe(4 * MSS);
    expect(p.take().map((a) => a.ack)).toEqual([start + 4 * MSS]);
    // The bracket is closed: later input is answered per segment again.
    p.segment(4);
    p.segment(5);
    expect(p.take().map((a) => a.ack)).toEqual([start + 6 * MSS]);
  });
});
