// TCP state tracking in conntrack, written as packet traces: each test feeds
// real IPv4/TCP bytes through Conntrack.track() and asserts the verdict, the
// state and the direction, one segment at a time.
import { describe, it, expect } from 'vitest';
import { CT_RESULT } from '../src/stack/registration.js';
import { Conntrack, CT_HOOK, CT_UNTRACKED, TCPF, type ConntrackOptions } from '../src/stack/conntrack/index.js';

const C = 0x0ac80001; // 10.200.0.1, the client (originator)
const S = 0x0ac80003; // 10.200.0.3, the dataplane (responder)
const CP = 40000;
const SP = 80;
const { SYN, ACK, FIN, RST, PSH } = TCPF;

interface Seg { flags: number; seq: number; ack?: number; win?: number; len?: number; wscale?: number }

/** An IPv4 + TCP packet as bytes (checksums are not conntrack's business). */
function tcpBytes(src: number, dst: number, sport: number, dport: number, s: Seg): Uint8Array {
  const opts = s.wscale !== undefined ? [1, 3, 3, s.wscale] : [];
  const thl = 20 + opts.length;
  const len = s.len ?? 0;
  const total = 20 + thl + len;
  const b = new Uint8Array(total);
  const dv = new DataView(b.buffer);
  b[0] = 0x45; dv.setUint16(2, total); dv.setUint16(6, 0x4000); b[8] = 64; b[9] = 6;
  dv.setUint32(12, src); dv.setUint32(16, dst);
  dv.setUint16(20, sport); dv.setUint16(22, dport);
  dv.setUint32(24, s.seq >>> 0); dv.setUint32(28, (s.ack ?? 0) >>> 0);
  b[32] = (thl / 4) << 4; b[33] = s.flags; dv.setUint16(34, s.win ?? 65535);
  b.set(opts, 40);
  return b;
}

class Trace {
  readonly ct: Conntrack;
  now = 1000;
  constructor(opts: ConntrackOptions = {}) { this.ct = new Conntrack({ seed: 7, ...opts }); }
  /** A segment from the client to the server. */
  c(s: Seg): number { return this.ct.track(tcpBytes(C, S, CP, SP, s), 0, CT_HOOK.IN, this.now); }
  /** A segment from the server to the client. */
  s(s: Seg): number { return this.ct.track(tcpBytes(S, C, SP, CP, s), 0, CT_HOOK.OUT, this.now); }
  get state(): string { return this.ct.get(this.ct.lastId)!.state; }
  entry() { return this.ct.snapshot()[0]!; }
}

const ISN_C = 1000;
const ISN_S = 0xfffffff0; // wraps during the connection: sequence arithmetic must be modular

/** A connection through the handshake: the client's next seq is ISN_C+1, the server's ISN_S+1. */
function established(opts: ConntrackOptions = {}): Trace {
  const t = new Trace(opts);
  expect(t.c({ flags: SYN, seq: ISN_C, wscale: 7 })).toBe(CT_RESULT.CONNECTING);
  expect(t.s({ flags: SYN | ACK, seq: ISN_S, ack: ISN_C + 1, wscale: 7 })).toBe(CT_RESULT.CONNECTING);
  expect(t.c({ flags: ACK, seq: ISN_C + 1, ack: ISN_S + 1 })).toBe(CT_RESULT.ALIVE);
  return t;
}

describe('handshake', () => {
  it('SYN, SYN-ACK, ACK: SYN_SENT → SYN_RECV → ESTABLISHED, one entry for both directions', () => {
    const t = new Trace();
    expect(t.c({ flags: SYN, seq: ISN_C })).toBe(CT_RESULT.CONNECTING);
    const id = t.ct.lastId;
    expect([t.state, t.ct.lastDir]).toEqual(['SYN_SENT', 0]);
    expect(t.s({ flags: SYN | ACK, seq: ISN_S, ack: ISN_C + 1 })).toBe(CT_RESULT.CONNECTING);
    expect([t.state, t.ct.lastDir, t.ct.lastId]).toEqual(['SYN_RECV', 1, id]);
    expect(t.c({ flags: ACK, seq: ISN_C + 1, ack: ISN_S + 1 })).toBe(CT_RESULT.ALIVE);
    expect([t.state, t.ct.lastDir, t.ct.lastId]).toEqual(['ESTABLISHED', 0, id]);
    expect(t.ct.size).toBe(1);
    const e = t.entry();
    expect([e.src, e.dst, e.sport, e.dport, e.origin, e.replied]).toEqual([C, S, CP, SP, CT_HOOK.IN, true]);
  });

  it('a retransmitted SYN keeps SYN_SENT and one entry; a SYN with a new ISN restarts the stream', () => {
    const t = new Trace();
    t.c({ flags: SYN, seq: ISN_C });
    expect(t.c({ flags: SYN, seq: ISN_C })).toBe(CT_RESULT.CONNECTING);
    expect([t.state, t.ct.size, t.entry().packets[0]]).toEqual(['SYN_SENT', 1, 2]);
    t.c({ flags: SYN, seq: 5000 });
    // A SYN-ACK for the abandoned ISN does not acknowledge the current SYN.
    expect(t.s({ flags: SYN | ACK, seq: ISN_S, ack: ISN_C + 1 })).toBe(CT_RESULT.CONNECTING);
    expect(t.state).toBe('SYN_SENT');
    expect(t.ct.invalid.get('out_of_window')).toBe(1);
    expect(t.s({ flags: SYN | ACK, seq: ISN_S, ack: 5001 })).toBe(CT_RESULT.CONNECTING);
    expect(t.state).toBe('SYN_RECV');
  });

  it('a retransmitted SYN-ACK keeps SYN_RECV; a stale SYN in ESTABLISHED is ignored, not tracked as new', () => {
    const t = new Trace();
    t.c({ flags: SYN, seq: ISN_C });
    t.s({ flags: SYN | ACK, seq: ISN_S, ack: ISN_C + 1 });
    expect(t.s({ flags: SYN | ACK, seq: ISN_S, ack: ISN_C + 1 })).toBe(CT_RESULT.CONNECTING);
    expect(t.state).toBe('SYN_RECV');
    t.c({ flags: ACK, seq: ISN_C + 1, ack: ISN_S + 1 });
    expect(t.c({ flags: SYN, seq: ISN_C })).toBe(CT_RESULT.ALIVE);
    expect([t.state, t.ct.size, t.ct.stats.inserts]).toEqual(['ESTABLISHED', 1, 1]);
  });

  it('simultaneous open: SYN both ways → SYN_SENT2, SYN-ACKs → SYN_RECV, ACK → ESTABLISHED', () => {
    const t = new Trace();
    t.c({ flags: SYN, seq: ISN_C });
    expect(t.s({ flags: SYN, seq: ISN_S })).toBe(CT_RESULT.CONNECTING);
    expect(t.state).toBe('SYN_SENT2');
    expect(t.c({ flags: SYN | ACK, seq: ISN_C, ack: ISN_S + 1 })).toBe(CT_RESULT.CONNECTING);
    expect(t.state).toBe('SYN_RECV');
    expect(t.s({ flags: SYN | ACK, seq: ISN_S, ack: ISN_C + 1 })).toBe(CT_RESULT.CONNECTING);
    expect(t.c({ flags: ACK, seq: ISN_C + 1, ack: ISN_S + 1 })).toBe(CT_RESULT.ALIVE);
    expect(t.state).toBe('ESTABLISHED');
  });

  it('the originator may not send data or FIN before the responder answers', () => {
    const t = new Trace();
    t.c({ flags: SYN, seq: ISN_C });
    expect(t.c({ flags: ACK, seq: ISN_C + 1, ack: 1 })).toBe(CT_RESULT.CONNECTING);
    expect(t.c({ flags: FIN | ACK, seq: ISN_C + 1, ack: 1 })).toBe(CT_RESULT.CONNECTING);
    expect(t.state).toBe('SYN_SENT');
    expect(t.ct.invalid.get('invalid_state')).toBe(2);
  });
});

describe('data and counters', () => {
  it('counts packets and bytes each way, across a sequence-number wrap', () => {
    const t = established();
    t.c({ flags: ACK | PSH, seq: ISN_C + 1, ack: ISN_S + 1, len: 100 });
    t.s({ flags: ACK | PSH, seq: ISN_S + 1, ack: ISN_C + 101, len: 1000 });
    t.s({ flags: ACK | PSH, seq: (ISN_S + 1001) >>> 0, ack: ISN_C + 101, len: 1000 });
    expect(t.c({ flags: ACK, seq: ISN_C + 101, ack: (ISN_S + 2001) >>> 0 })).toBe(CT_RESULT.ALIVE);
    const e = t.entry();
    expect(e.packets).toEqual([4, 3]);
    // 40-byte headers, +4 option bytes on the SYN and SYN-ACK
    expect(e.bytes).toEqual([44 + 40 + 140 + 40, 44 + 1040 + 1040]);
    expect(t.ct.stats.hits).toBe(6);
  });

  it('rejects data beyond the window and ACKs for data never sent, without a state change', () => {
    const t = established();
    // The SYN-ACK's window is never scaled: 65535 bytes ahead at most.
    t.c({ flags: ACK, seq: ISN_C + 1 + 70_000, ack: ISN_S + 1, len: 10 });
    expect(t.ct.invalid.get('out_of_window')).toBe(1);
    // Once the server advertises 65535 << 7, 8 MB ahead is in window, 9 MB is not.
    t.s({ flags: ACK, seq: ISN_S + 1, ack: ISN_C + 1 });
    expect(t.c({ flags: ACK, seq: ISN_C + 1 + 8_000_000, ack: ISN_S + 1, len: 10 })).toBe(CT_RESULT.ALIVE);
    expect(t.ct.invalid.get('out_of_window')).toBe(1);
    t.c({ flags: ACK, seq: ISN_C + 1 + 9_000_000, ack: ISN_S + 1, len: 10 });
    expect(t.ct.invalid.get('out_of_window')).toBe(2);
    t.c({ flags: ACK, seq: ISN_C + 1, ack: ISN_S + 100 });
    expect(t.ct.invalid.get('out_of_window')).toBe(3);
    expect(t.entry().packets[0]).toBe(3); // SYN, ACK and the in-window segment
  });

  it('without window scale on both SYNs, windows are not scaled', () => {
    const t = new Trace();
    t.c({ flags: SYN, seq: ISN_C, wscale: 7 });
    t.s({ flags: SYN | ACK, seq: ISN_S, ack: ISN_C + 1 });
    t.c({ flags: ACK, seq: ISN_C + 1, ack: ISN_S + 1 });
    t.c({ flags: ACK, seq: ISN_C + 1 + 100_000, ack: ISN_S + 1, len: 10 });
    expect(t.ct.invalid.get('out_of_window')).toBe(1);
  });

  it('dropInvalid turns invalid packets into DROP', () => {
    const t = established({ dropInvalid: true });
    expect(t.c({ flags: ACK, seq: ISN_C + 1 + 90_000_000, ack: ISN_S + 1, len: 10 })).toBe(CT_RESULT.DROP);
    expect(t.ct.stats.dropped).toBe(1);
  });
});

describe('closing', () => {
  it('FIN from the originator: FIN_WAIT → CLOSE_WAIT → LAST_ACK → TIME_WAIT, closed by originator', () => {
    const t = established();
    expect(t.c({ flags: FIN | ACK, seq: ISN_C + 1, ack: ISN_S + 1 })).toBe(CT_RESULT.ALIVE);
    expect(t.state).toBe('FIN_WAIT');
    // An ACK that does not cover the FIN changes nothing.
    t.s({ flags: ACK, seq: ISN_S + 1, ack: ISN_C + 1 });
    expect(t.state).toBe('FIN_WAIT');
    t.s({ flags: ACK, seq: ISN_S + 1, ack: ISN_C + 2 });
    expect(t.state).toBe('CLOSE_WAIT');
    // Half-closed: the responder still sends data.
    expect(t.s({ flags: ACK | PSH, seq: ISN_S + 1, ack: ISN_C + 2, len: 50 })).toBe(CT_RESULT.ALIVE);
    t.c({ flags: ACK, seq: ISN_C + 2, ack: ISN_S + 51 });
    expect(t.state).toBe('CLOSE_WAIT');
    expect(t.s({ flags: FIN | ACK, seq: ISN_S + 51, ack: ISN_C + 2 })).toBe(CT_RESULT.ALIVE);
    expect(t.state).toBe('LAST_ACK');
    expect(t.c({ flags: ACK, seq: ISN_C + 2, ack: ISN_S + 52 })).toBe(CT_RESULT.CLOSED_BY_ORIGINATOR);
    expect(t.state).toBe('TIME_WAIT');
    expect(t.entry().firstFin).toBe('original');
    // A retransmitted FIN in TIME_WAIT stays there.
    expect(t.s({ flags: FIN | ACK, seq: ISN_S + 51, ack: ISN_C + 2 })).toBe(CT_RESULT.CLOSED_BY_ORIGINATOR);
  });

  it('FIN from the responder first: closed by responder', () => {
    const t = established();
    t.s({ flags: FIN | ACK, seq: ISN_S + 1, ack: ISN_C + 1 });
    expect(t.state).toBe('FIN_WAIT');
    t.c({ flags: ACK, seq: ISN_C + 1, ack: ISN_S + 2 });
    expect(t.state).toBe('CLOSE_WAIT');
    t.c({ flags: FIN | ACK, seq: ISN_C + 1, ack: ISN_S + 2 });
    expect(t.state).toBe('LAST_ACK');
    expect(t.s({ flags: ACK, seq: ISN_S + 2, ack: ISN_C + 2 })).toBe(CT_RESULT.CLOSED_BY_RESPONDER);
    expect(t.entry().firstFin).toBe('reply');
  });

  it('simultaneous close: FINs cross → LAST_ACK, both acknowledged → TIME_WAIT', () => {
    const t = established();
    t.c({ flags: FIN | ACK, seq: ISN_C + 1, ack: ISN_S + 1 });
    t.s({ flags: FIN | ACK, seq: ISN_S + 1, ack: ISN_C + 1 });
    expect(t.state).toBe('LAST_ACK');
    t.c({ flags: ACK, seq: ISN_C + 2, ack: ISN_S + 2 });
    expect(t.state).toBe('LAST_ACK');
    expect(t.s({ flags: ACK, seq: ISN_S + 2, ack: ISN_C + 2 })).toBe(CT_RESULT.CLOSED_BY_ORIGINATOR);
    expect(t.state).toBe('TIME_WAIT');
  });

  it('a SYN in TIME_WAIT reuses the tuple: the old entry is replaced by a new one', () => {
    const t = established();
    t.c({ flags: FIN | ACK, seq: ISN_C + 1, ack: ISN_S + 1 });
    t.s({ flags: FIN | ACK, seq: ISN_S + 1, ack: ISN_C + 2 });
    t.c({ flags: ACK, seq: ISN_C + 2, ack: ISN_S + 2 });
    const old = t.ct.lastId;
    expect(t.state).toBe('TIME_WAIT');
    expect(t.c({ flags: SYN, seq: 777777 })).toBe(CT_RESULT.CONNECTING);
    expect(t.ct.lastId).not.toBe(old);
    expect(t.ct.get(old)).toBeUndefined();
    expect([t.state, t.ct.size, t.ct.stats.reopened, t.entry().packets[0]]).toEqual(['SYN_SENT', 1, 1, 1]);
  });
});

describe('reset', () => {
  it('an exact RST resets the flow', () => {
    const t = established();
    expect(t.s({ flags: RST, seq: ISN_S + 1 })).toBe(CT_RESULT.RESET);
    expect(t.state).toBe('CLOSE');
    // Stragglers after the reset pass unchanged.
    expect(t.c({ flags: ACK, seq: ISN_C + 1, ack: ISN_S + 1 })).toBe(CT_RESULT.RESET);
  });

  it('a RST at the receiver\'s last ACK resets too (RFC 5961 §3.2)', () => {
    const t = established();
    t.c({ flags: ACK | PSH, seq: ISN_C + 1, ack: ISN_S + 1, len: 10 });
    t.s({ flags: ACK, seq: ISN_S + 1, ack: ISN_C + 11 });
    expect(t.c({ flags: RST | ACK, seq: ISN_C + 11, ack: ISN_S + 1 })).toBe(CT_RESULT.RESET);
  });

  it('an in-window RST that is not exact changes nothing (the endpoint sends a challenge ACK)', () => {
    const t = established();
    expect(t.s({ flags: RST, seq: ISN_S + 1000 })).toBe(CT_RESULT.ALIVE);
    expect(t.state).toBe('ESTABLISHED');
    expect(t.ct.invalid.total()).toBe(0);
  });

  it('an out-of-window RST is invalid', () => {
    const t = established();
    expect(t.s({ flags: RST, seq: ISN_S + 100_000_000 })).toBe(CT_RESULT.ALIVE);
    expect(t.state).toBe('ESTABLISHED');
    expect(t.ct.invalid.get('out_of_window')).toBe(1);
  });

  it('a RST answering a SYN (closed port) resets only when it acknowledges the SYN', () => {
    const t = new Trace();
    t.c({ flags: SYN, seq: ISN_C });
    expect(t.s({ flags: RST | ACK, seq: 0, ack: ISN_C + 5 })).toBe(CT_RESULT.CONNECTING);
    expect(t.ct.invalid.get('out_of_window')).toBe(1);
    expect(t.s({ flags: RST | ACK, seq: 0, ack: ISN_C + 1 })).toBe(CT_RESULT.RESET);
  });
});

describe('unreplied pickups', () => {
  it('a stray ACK is picked up on the short timeout; the endpoint\'s RST answer closes it', () => {
    const t = new Trace();
    expect(t.c({ flags: ACK, seq: 5000, ack: 9000 })).toBe(CT_RESULT.ALIVE);
    let e = t.entry();
    expect([e.state, e.replied, e.timeoutClass, e.expiresAt]).toEqual(['ESTABLISHED', false, 'unreplied', t.now + 60_000]);
    // The endpoint knows no such connection: <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.1).
    t.now += 5;
    expect(t.s({ flags: RST, seq: 9000 })).toBe(CT_RESULT.RESET);
    e = t.entry();
    expect([e.state, e.replied, e.timeoutClass, e.expiresAt]).toEqual(['CLOSE', true, 'closing', t.now + 10_000]);
  });

  it('an invalid packet in the reply direction is not a reply', () => {
    const t = new Trace();
    t.c({ flags: ACK, seq: 5000, ack: 9000 });
    expect(t.s({ flags: FIN, seq: 9000 })).toBe(CT_RESULT.ALIVE); // FIN without ACK: bad flags, passed untouched
    expect(t.ct.invalid.get('bad_flags')).toBe(1);
    const e = t.entry();
    expect([e.replied, e.timeoutClass, e.packets]).toEqual([false, 'unreplied', [1, 0]]);
  });
});

describe('packets that cannot start a flow', () => {
  it('bad flag combinations are counted and not tracked', () => {
    const t = new Trace();
    expect(t.c({ flags: SYN | FIN, seq: 1 })).toBe(CT_UNTRACKED);
    expect(t.c({ flags: 0, seq: 1 })).toBe(CT_UNTRACKED);
    expect(t.c({ flags: FIN, seq: 1 })).toBe(CT_UNTRACKED);
    expect(t.ct.invalid.get('bad_flags')).toBe(3);
    expect(t.ct.size).toBe(0);
    const u = established();
    expect(u.c({ flags: SYN | RST, seq: ISN_C + 1 })).toBe(CT_RESULT.ALIVE);
    expect(u.ct.invalid.get('bad_flags')).toBe(1);
  });

  it('a SYN-ACK, FIN or RST without an entry is invalid_state; a stray ACK is no_entry unless loose', () => {
    const t = new Trace({ loose: false });
    expect(t.s({ flags: SYN | ACK, seq: 1, ack: 2 })).toBe(CT_UNTRACKED);
    expect(t.s({ flags: RST, seq: 1 })).toBe(CT_UNTRACKED);
    expect(t.s({ flags: FIN | ACK, seq: 1, ack: 2 })).toBe(CT_UNTRACKED);
    expect(t.ct.invalid.get('invalid_state')).toBe(3);
    expect(t.c({ flags: ACK, seq: 1, ack: 2 })).toBe(CT_UNTRACKED);
    expect(t.ct.invalid.get('no_entry')).toBe(1);
    expect(t.ct.size).toBe(0);
    const d = new Trace({ loose: false, dropInvalid: true });
    expect(d.c({ flags: ACK, seq: 1, ack: 2 })).toBe(CT_RESULT.DROP);
  });

  it('with loose pickup a mid-stream ACK starts an ESTABLISHED entry', () => {
    const t = new Trace({ loose: true });
    expect(t.c({ flags: ACK, seq: 5, ack: 9 })).toBe(CT_RESULT.ALIVE);
    const e = t.entry();
    expect([e.state, e.pickedUp, e.replied, e.timeoutClass]).toEqual(['ESTABLISHED', true, false, 'unreplied']);
    expect(t.s({ flags: ACK | PSH, seq: 9, ack: 5, len: 100 })).toBe(CT_RESULT.ALIVE);
    expect(t.ct.lastDir).toBe(1);
    expect([t.entry().replied, t.entry().timeoutClass]).toEqual([true, 'established']);
    expect(t.s({ flags: FIN | ACK, seq: 109, ack: 5 })).toBe(CT_RESULT.ALIVE);
    expect(t.state).toBe('FIN_WAIT');
  });
});
