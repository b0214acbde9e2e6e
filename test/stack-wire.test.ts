// Wire formats: parse/emit round trips against hand-made bytes, malformed
// input refused with the right drop reason, incremental checksum updates
// equal to full recomputation.
import { describe, expect, test } from 'vitest';
import { DROP } from '../src/stack/stats.js';
import {
  ETH, ETHERTYPE, ethEmit, ethHeaderLen, ethIsBroadcast, ethParse, ethType, ethVlanId, ethVlanPcp, macFromString, macToString,
  ARP_OP, arpCheck, arpEmit, arpParse, arpTurnToReply,
  WIRE_OK, IP4, ipv4Check, ipv4Emit, ipv4Parse, ipv4SetTtl, ipv4SwapAddrs, ipv4FillChecksum, ipv4IsMartianSource,
  IP6_NEXT, Ipv6Walk, ipv6Check, ipv6Walk, ip6ToString,
  ICMP_TYPE, icmpCheck, icmpEchoToReply, icmpEmit, icmpNextMtu, icmp6Check,
  udpCheck, udpEmit, udpParse,
  finish, sum16, pseudo4, update16, update32,
} from '../src/stack/wire/index.js';
import { Prng } from '../src/util/prng.js';

const hex = (s: string): Uint8Array => Uint8Array.from((s.replace(/\s+/g, '').match(/../g) ?? []).map((x) => parseInt(x, 16)));
const ip = (s: string): number => s.split('.').reduce((a, x) => a * 256 + Number(x), 0) >>> 0;

/** An independent reference checksum (DataView, 32-bit folding at every step). */
function refChecksum(b: Uint8Array, extra = 0): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let s = extra;
  for (let i = 0; i + 1 < b.length; i += 2) { s += dv.getUint16(i); s = (s & 0xffff) + (s >>> 16); }
  if (b.length & 1) { s += b[b.length - 1]! << 8; s = (s & 0xffff) + (s >>> 16); }
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

describe('Ethernet', () => {
  test('untagged, 802.1Q and QinQ headers', () => {
    const plain = hex('ffffffffffff 020000000001 0806' + '00'.repeat(28));
    expect(ethHeaderLen(plain, 0, plain.length)).toBe(14);
    expect(ethType(plain, 0, 14)).toBe(ETHERTYPE.ARP);
    expect(ethVlanId(plain, 0, 14)).toBe(-1);
    expect(ethIsBroadcast(plain, 0)).toBe(true);
    const tagged = hex('020000000002 020000000001 8100 a064 0800' + '00'.repeat(20));
    expect(ethHeaderLen(tagged, 0, tagged.length)).toBe(18);
    expect(ethType(tagged, 0, 18)).toBe(ETHERTYPE.IPV4);
    expect(ethVlanId(tagged, 0, 18)).toBe(100);
    expect(ethVlanPcp(tagged, 0, 18)).toBe(5);
    const qinq = hex('020000000002 020000000001 88a8 0007 8100 0064 86dd' + '00'.repeat(40));
    expect(ethHeaderLen(qinq, 0, qinq.length)).toBe(22);
    expect(ethType(qinq, 0, 22)).toBe(ETHERTYPE.IPV6);
    expect(ethVlanId(qinq, 0, 22)).toBe(7);
    expect(ethParse(tagged, 0, tagged.length)).toEqual({ dst: '02:00:00:00:00:02', src: '02:00:00:00:00:01', type: 0x0800, vlan: 100, hlen: 18 });
  });

  test('short frames and truncated tags are refused', () => {
    expect(ethHeaderLen(new Uint8Array(13), 0, 13)).toBe(-1);
    const t = hex('020000000002 020000000001 8100 0064');
    expect(ethHeaderLen(t, 0, t.length)).toBe(-1);
  });

  test('emit writes the same bytes as the hand-made frame, at an offset', () => {
    const buf = new Uint8Array(64);
    const dst = macFromString('02:00:00:00:00:02')!, src = macFromString('02:00:00:00:00:01')!;
    expect(ethEmit(buf, 10, dst, 0, src, 0, ETHERTYPE.IPV4, 100, 5)).toBe(18);
    expect(buf.subarray(10, 28)).toEqual(hex('020000000002 020000000001 8100 a064 0800'));
    expect(ethEmit(buf, 0, dst, 0, src, 0, ETHERTYPE.ARP)).toBe(ETH.HLEN);
    expect(macToString(buf, 6)).toBe('02:00:00:00:00:01');
    expect(macFromString('nope')).toBeNull();
  });
});

describe('ARP', () => {
  const req = hex('0001 0800 06 04 0001 020000000001 0a000001 000000000000 0a000002');
  test('parse of a hand-made request; emit reproduces it', () => {
    expect(arpCheck(req, 0, req.length)).toBe(true);
    const r = arpParse(req, 0, req.length)!;
    expect(r.oper).toBe(ARP_OP.REQUEST);
    expect(r.spa).toBe(ip('10.0.0.1'));
    expect(r.tpa).toBe(ip('10.0.0.2'));
    const out = new Uint8Array(28);
    arpEmit(out, 0, ARP_OP.REQUEST, macFromString('02:00:00:00:00:01')!, 0, ip('10.0.0.1'), null, 0, ip('10.0.0.2'));
    expect(out).toEqual(req);
  });
  test('turned into the reply in place', () => {
    const b = req.slice();
    arpTurnToReply(b, 0, macFromString('02:00:00:00:00:02')!, 0);
    expect(b).toEqual(hex('0001 0800 06 04 0002 020000000002 0a000002 020000000001 0a000001'));
  });
  test('other hardware/protocol types and short packets are refused', () => {
    expect(arpCheck(req, 0, 27)).toBe(false);
    const b = req.slice(); b[1] = 6; // IEEE 802
    expect(arpCheck(b, 0, 28)).toBe(false);
    const c = req.slice(); c[5] = 16; // IPv6-sized addresses
    expect(arpCheck(c, 0, 28)).toBe(false);
  });
});

describe('IPv4', () => {
  // The classic example header (RFC 1071 style walk-through): checksum 0xb861.
  const hdr = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
  const pkt = new Uint8Array(0x73); pkt.set(hdr);

  test('parse of a hand-made header', () => {
    expect(ipv4Check(pkt, 0, pkt.length)).toBe(WIRE_OK);
    expect(ipv4Parse(pkt, 0, pkt.length)).toEqual({
      hlen: 20, tos: 0, totalLen: 0x73, id: 0, df: true, mf: false, fragOffset: 0, ttl: 64, protocol: 17, checksum: 0xb861,
      src: ip('192.168.0.1'), dst: ip('192.168.0.199'),
    });
  });

  test('emit reproduces the hand-made header and its checksum', () => {
    const b = new Uint8Array(20);
    ipv4Emit(b, 0, ip('192.168.0.1'), ip('192.168.0.199'), 17, 0x73, 0, 0x4000, 64, 0);
    expect(b).toEqual(hdr);
    expect(refChecksum(b)).toBe(0);
  });

  test('each malformation is refused with its own reason', () => {
    const bad = (mut: (b: Uint8Array) => void, len = pkt.length): number => { const b = pkt.slice(); mut(b); return ipv4Check(b, 0, len); };
    expect(bad(() => {}, 19)).toBe(DROP.IP_SHORT);
    expect(bad((b) => { b[0] = 0x65; ipv4FillChecksum(b, 0); })).toBe(DROP.IP_BAD_VERSION);
    expect(bad((b) => { b[0] = 0x44; })).toBe(DROP.IP_BAD_HEADER_LEN);
    expect(bad((b) => { b[0] = 0x4f; }, 40)).toBe(DROP.IP_SHORT); // IHL 60 > 40 available
    expect(bad(() => {}, 0x72)).toBe(DROP.IP_BAD_LENGTH); // total length beyond the frame
    expect(bad((b) => { b[2] = 0; b[3] = 19; ipv4FillChecksum(b, 0); })).toBe(DROP.IP_BAD_LENGTH); // total < IHL
    expect(bad((b) => { b[11] ^= 1; })).toBe(DROP.IP_BAD_CHECKSUM);
    // Padding after the datagram (Ethernet minimum frame) is fine.
    const padded = new Uint8Array(0x80); padded.set(pkt);
    expect(ipv4Check(padded, 0, padded.length)).toBe(WIRE_OK);
  });

  test('options are walked and each option length is checked', () => {
    const withOpts = (opts: string): Uint8Array => {
      const o = hex(opts);
      const hl = 20 + o.length;
      const b = new Uint8Array(hl + 8);
      b.set(hdr); b.set(o, 20);
      b[0] = 0x40 | (hl >> 2); b[2] = 0; b[3] = hl + 8;
      ipv4FillChecksum(b, 0);
      return b;
    };
    // NOP, NOP, record route (len 7, pointer 4, one slot), EOL, padding
    expect(ipv4Check(withOpts('01 01 07 07 04 00000000 00 0000'), 0, 40)).toBe(WIRE_OK);
    expect(ipv4Check(withOpts('01 01 07 0b 04 00000000 00 0000'), 0, 40)).toBe(DROP.IP_BAD_OPTIONS); // runs past the header
    expect(ipv4Check(withOpts('07 01 0000'), 0, 40)).toBe(DROP.IP_BAD_OPTIONS); // length < 2
    expect(ipv4Check(withOpts('01 01 01 44'), 0, 40)).toBe(DROP.IP_BAD_OPTIONS); // type without room for its length
  });

  test('TTL change and address swap keep the checksum valid (incremental = full)', () => {
    const rng = new Prng(42);
    for (let k = 0; k < 200; k++) {
      const b = new Uint8Array(20);
      ipv4Emit(b, 0, rng.u32(), rng.u32(), rng.int(256), 20 + rng.int(1000), rng.int(65536), rng.int(65536), 1 + rng.int(255), rng.int(256));
      const ttl = 1 + rng.int(255);
      ipv4SetTtl(b, 0, ttl);
      ipv4SwapAddrs(b, 0);
      const incr = (b[10]! << 8) | b[11]!;
      ipv4FillChecksum(b, 0);
      // RFC 1624: the incremental form may give 0x0000 where the full one gives 0xffff only for an all-zero sum; equal otherwise.
      expect(incr).toBe((b[10]! << 8) | b[11]!);
      expect(b[8]).toBe(ttl);
    }
  });

  test('martian sources', () => {
    for (const a of ['0.0.0.0', '127.0.0.1', '224.0.0.1', '255.255.255.255', '240.0.0.1']) expect(ipv4IsMartianSource(ip(a))).toBe(true);
    expect(ipv4IsMartianSource(ip('10.0.0.1'))).toBe(false);
  });
});

describe('checksum', () => {
  test('sum16/finish agree with an independent implementation, odd lengths and offsets included', () => {
    const rng = new Prng(7);
    for (let k = 0; k < 200; k++) {
      const n = rng.int(3000);
      const b = new Uint8Array(n + 3);
      for (let i = 0; i < b.length; i++) b[i] = rng.int(256);
      expect(finish(sum16(b, 3, n))).toBe(refChecksum(b.subarray(3)));
    }
  });
  test('the word path (32-bit reads over the buffer) equals the reference at every alignment, across buffers and views', () => {
    const rng = new Prng(11);
    const a = new Uint8Array(8192);
    const b = new Uint8Array(8192);
    for (let i = 0; i < a.length; i++) { a[i] = rng.int(256); b[i] = 0xff; }
    for (let k = 0; k < 400; k++) {
      const src = k % 3 === 0 ? b : a; // all-ones data carries on every add
      const base = rng.int(64);
      const view = src.subarray(base); // byteOffset != 0: the cached word view is over the whole buffer
      const off = rng.int(64);
      const n = 32 + rng.int(3000);
      const acc = rng.int(1 << 20);
      const ref = refChecksum(view.subarray(off, off + n), acc);
      expect(finish(sum16(view, off, n, acc))).toBe(ref);
      // Interleave a short sum on another buffer so the view cache switches.
      const other = new Uint8Array(40 + (k & 7)).fill(k & 255);
      expect(finish(sum16(other, 0, other.length))).toBe(refChecksum(other));
    }
  });
  test('update16/update32 equal a full recompute (RFC 1624)', () => {
    const rng = new Prng(9);
    for (let k = 0; k < 500; k++) {
      const b = new Uint8Array(64);
      for (let i = 0; i < 64; i++) b[i] = rng.int(256);
      const c0 = finish(sum16(b, 0, 64));
      const at = 2 * rng.int(31);
      const old32 = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
      const nw = rng.u32();
      b[at] = nw >>> 24; b[at + 1] = (nw >>> 16) & 255; b[at + 2] = (nw >>> 8) & 255; b[at + 3] = nw & 255;
      const full = finish(sum16(b, 0, 64));
      const inc = update32(c0, old32, nw);
      // Both represent the same ones'-complement value (0x0000 and 0xffff are the same number).
      expect(inc === full || (inc ^ full) === 0xffff && (inc === 0 || full === 0)).toBe(true);
      expect(update16(c0, old32 >>> 16, old32 >>> 16)).toBe(c0);
    }
  });
});

describe('ICMP', () => {
  // A Linux ping request (id 0x1234, seq 1) with 8 bytes of data.
  const echo = hex('0800 0000 1234 0001 0102030405060708');
  echo[2] = refChecksum(echo) >>> 8; echo[3] = refChecksum(echo) & 255;

  test('echo request checks; the in-place reply equals a fresh emit', () => {
    expect(icmpCheck(echo, 0, echo.length)).toBe(WIRE_OK);
    const r = echo.slice();
    icmpEchoToReply(r, 0);
    const fresh = new Uint8Array(16); fresh.set(echo.subarray(8), 8);
    icmpEmit(fresh, 0, ICMP_TYPE.ECHO_REPLY, 0, 0x12340001, 16);
    expect(r).toEqual(fresh);
    expect(refChecksum(r)).toBe(0);
  });

  test('short messages and bad checksums are refused', () => {
    expect(icmpCheck(echo, 0, 7)).toBe(DROP.ICMP_SHORT);
    const b = echo.slice(); b[9] ^= 0x10;
    expect(icmpCheck(b, 0, b.length)).toBe(DROP.ICMP_BAD_CHECKSUM);
  });

  test('fragmentation needed carries the next-hop MTU (RFC 1191)', () => {
    const b = new Uint8Array(36);
    icmpEmit(b, 0, 3, 4, 1400, 36);
    expect(icmpNextMtu(b, 0)).toBe(1400);
    expect(icmpCheck(b, 0, 36)).toBe(WIRE_OK);
  });
});

describe('UDP', () => {
  const src = ip('10.0.0.1'), dst = ip('10.0.0.2');
  test('emit then parse; checksum matches an independent computation', () => {
    const b = new Uint8Array(8 + 5);
    b.set(new TextEncoder().encode('hello'), 8);
    udpEmit(b, 0, 40000, 53, 13, src, dst);
    expect(Array.from(b.subarray(0, 6))).toEqual([0x9c, 0x40, 0x00, 0x35, 0x00, 0x0d]);
    const pseudo = hex('0a000001 0a000002 0011 000d');
    const ref = refChecksum(Uint8Array.from([...pseudo, ...b.subarray(0, 6), 0, 0, ...b.subarray(8)]));
    expect((b[6]! << 8) | b[7]!).toBe(ref);
    const r = udpParse(b, 0, 13, src, dst);
    expect(typeof r).toBe('object');
    if (typeof r === 'object') { expect(r.srcPort).toBe(40000); expect(new TextDecoder().decode(r.payload)).toBe('hello'); }
  });
  test('zero checksum means none; bad length and checksum are refused', () => {
    const b = new Uint8Array(12);
    udpEmit(b, 0, 1, 2, 12, src, dst);
    b[11] ^= 1;
    expect(udpCheck(b, 0, 12, src, dst)).toBe(DROP.UDP_BAD_CHECKSUM);
    b[6] = 0; b[7] = 0;
    expect(udpCheck(b, 0, 12, src, dst)).toBe(WIRE_OK);
    expect(udpCheck(b, 0, 7, src, dst)).toBe(DROP.UDP_SHORT);
    b[5] = 13; // UDP length beyond the IP payload
    expect(udpCheck(b, 0, 12, src, dst)).toBe(DROP.UDP_BAD_LENGTH);
    b[5] = 7;
    expect(udpCheck(b, 0, 12, src, dst)).toBe(DROP.UDP_BAD_LENGTH);
  });
  test('a computed checksum of zero is sent as 0xffff (RFC 768)', () => {
    // Find a payload whose checksum computes to 0 and check it is sent as all ones.
    const b = new Uint8Array(10);
    for (let v = 0; v < 65536; v++) {
      b[8] = v >>> 8; b[9] = v & 255;
      udpEmit(b, 0, 1000, 2000, 10, src, dst);
      if (finish(sum16(b, 0, 10, pseudo4(src, dst, 17, 10))) === 0 && b[6] === 0xff && b[7] === 0xff) {
        expect(udpCheck(b, 0, 10, src, dst)).toBe(WIRE_OK);
        return;
      }
    }
    throw new Error('no payload gives a zero checksum');
  });
});

describe('IPv6', () => {
  const src6 = 'fd00000000000000000000000000000' + '1', dst6 = 'fd00000000000000000000000000000' + '2';
  function packet(ext: string, next: number, upper: string): Uint8Array {
    const e = hex(ext), u = hex(upper);
    const b = new Uint8Array(40 + e.length + u.length);
    b.set(hex(`60000000 ${(e.length + u.length).toString(16).padStart(4, '0')} ${next.toString(16).padStart(2, '0')} 40 ${src6} ${dst6}`));
    b.set(e, 40); b.set(u, 40 + e.length);
    return b;
  }
  test('walks hop-by-hop, destination options and fragment headers to UDP', () => {
    const b = packet(
      '2c00 010400000000' // hop-by-hop (next: fragment), PadN
      + '3c00 0011 deadbeef' // fragment (next: dest opts), offset 2 (16 bytes), M=1, id deadbeef
      + '1100 0104 00000000', // destination options (next: UDP), PadN
      IP6_NEXT.HOP_BY_HOP, '1234 0035 0008 0000');
    expect(ipv6Check(b, 0, b.length)).toBe(WIRE_OK);
    const w = new Ipv6Walk();
    expect(ipv6Walk(b, 0, w)).toBe(WIRE_OK);
    expect(w.protocol).toBe(IP6_NEXT.UDP);
    expect(w.upperOff).toBe(64);
    expect(w.upperLen).toBe(8);
    expect(w.extCount).toBe(3);
    expect(w.fragment).toBe(true);
    expect(w.fragOffset).toBe(16);
    expect(w.fragMore).toBe(true);
    expect(w.fragId).toBe(0xdeadbeef);
    expect(ip6ToString(b, 8)).toBe('fd00::1');
  });
  test('truncated or misplaced extension headers are refused', () => {
    const w = new Ipv6Walk();
    const trunc = packet('1102 0000', IP6_NEXT.DEST_OPTS, ''); // claims 24 bytes, has 4
    expect(ipv6Walk(trunc, 0, w)).toBe(DROP.IP_BAD_OPTIONS);
    const lateHbh = packet('0000 0104 00000000' + '1100 0104 00000000', IP6_NEXT.DEST_OPTS, '');
    expect(ipv6Walk(lateHbh, 0, w)).toBe(DROP.IP_BAD_OPTIONS);
    const b = packet('', IP6_NEXT.UDP, '1234 0035 0008 0000');
    expect(ipv6Check(b, 0, b.length - 1)).toBe(DROP.IP_BAD_LENGTH);
    b[0] = 0x40;
    expect(ipv6Check(b, 0, b.length)).toBe(DROP.IP_BAD_VERSION);
  });
  test('ICMPv6 checksum over the pseudo-header', () => {
    const b = packet('', IP6_NEXT.ICMPV6, '8000 0000 0001 0002');
    const sum = finish(sum16(b, 40, 8, sum16(b, 8, 32) + 8 + 58));
    b[42] = sum >>> 8; b[43] = sum & 255;
    expect(icmp6Check(b, 0, 40, 8)).toBe(WIRE_OK);
    b[47] ^= 1;
    expect(icmp6Check(b, 0, 40, 8)).toBe(DROP.ICMP_BAD_CHECKSUM);
  });
});

test('IP4 offset table', () => { expect(IP4.HLEN).toBe(20); });
