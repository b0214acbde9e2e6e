// A tiny responder over any Link, for tests of the real links (the stack
// proper lives in src/stack): answers ARP requests and ICMP echo for its
// IPv4 addresses and echoes UDP, all in place (the received frame is edited
// and sent back, no copy), one burst per readiness event.
import { Burst, type Link } from '../../src/link/types.js';
import { update16 } from '../../src/stack/wire/checksum.js';

export interface ResponderCounts { arp: number; icmp: number; udp: number; other: number; batches: number }

function ip4(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export class EchoResponder {
  readonly counts: ResponderCounts = { arp: 0, icmp: 0, udp: 0, other: 0, batches: 0 };
  private readonly addrs: Set<number>;
  private readonly rx = new Burst(64);
  private readonly tx = new Burst(64);
  private readonly drop = new Burst(64);

  constructor(private readonly link: Link, addrs: string[]) {
    this.addrs = new Set(addrs.map(ip4));
  }

  start(): void { this.link.setReadyHandler(() => this.poll()); }
  stop(): void { this.link.setReadyHandler(null); }

  /** Handles everything the link has now; returns frames handled. */
  poll(): number {
    let total = 0;
    for (;;) {
      const n = this.link.recv(this.rx);
      if (n === 0) break;
      this.counts.batches++;
      total += n;
      for (let i = 0; i < this.rx.count; i++) {
        const off = this.rx.off(i), len = this.rx.len(i);
        if (this.answer(off, len)) this.tx.push(off, len);
        else this.drop.push(off, len);
      }
      this.rx.clear();
      this.link.send(this.tx);
      this.link.free(this.drop);
    }
    return total;
  }

  private answer(off: number, len: number): boolean {
    const m = this.link.mem;
    const dv = new DataView(m.buffer, m.byteOffset + off, len);
    if (len < 14) { this.counts.other++; return false; }
    const type = dv.getUint16(12);
    if (type === 0x0806 && len >= 42) {
      const tpa = dv.getUint32(38);
      if (dv.getUint16(20) !== 1 || !this.addrs.has(tpa)) { this.counts.other++; return false; }
      dv.setUint16(20, 2);                               // reply
      m.copyWithin(off + 32, off + 22, off + 32);        // tha/tpa <- sha/spa
      m.set(this.link.mac, off + 22);                    // sha = us
      dv.setUint32(28, tpa);                             // spa = the asked address
      m.copyWithin(off, off + 6, off + 12);              // eth dst <- src
      m.set(this.link.mac, off + 6);
      this.counts.arp++;
      return true;
    }
    if (type !== 0x0800 || len < 34) { this.counts.other++; return false; }
    const ihl = (dv.getUint8(14) & 0x0f) * 4;
    const dst = dv.getUint32(30), src = dv.getUint32(26);
    if (!this.addrs.has(dst)) { this.counts.other++; return false; }
    const proto = dv.getUint8(23);
    const l4 = 14 + ihl;
    if (proto === 1 && len >= l4 + 8 && dv.getUint8(l4) === 8) {
      dv.setUint8(l4, 0);                                // echo reply
      dv.setUint16(l4 + 2, update16(dv.getUint16(l4 + 2), 0x0800, 0x0000));
      this.counts.icmp++;
    } else if (proto === 17 && len >= l4 + 8) {
      const sp = dv.getUint16(l4), dp = dv.getUint16(l4 + 2);
      dv.setUint16(l4, dp);                              // swapping keeps the checksum valid
      dv.setUint16(l4 + 2, sp);
      this.counts.udp++;
    } else { this.counts.other++; return false; }
    dv.setUint32(26, dst);
    dv.setUint32(30, src);
    const mac = m.slice(off + 6, off + 12);
    m.set(mac, off);
    m.set(this.link.mac, off + 6);
    return true;
  }
}
