// The raw-packet benchmark's job, in TypeScript: a UDP echo over any Link.
//
// For each received frame, in place, without copying or allocating:
//   - IPv4/UDP to one of our addresses: swap the Ethernet MACs, the IPv4
//     addresses and the UDP ports, reset the TTL to 64, and send the same
//     frame back. Swapping addresses and ports leaves both the IPv4 and the
//     UDP checksum unchanged (ones' complement sums commute); the TTL change
//     is folded into the IPv4 checksum incrementally (RFC 1624 eqn. 3).
//   - ARP request (RFC 826) for one of our addresses: rewritten into the reply
//     in place, with the link's MAC.
//   - Anything else: dropped, and counted by reason (EchoDrop).
// The IPv4 header checksum is verified (RFC 1071), as a host would; the UDP
// checksum is not: the echo returns the payload unchanged, so a corrupted
// datagram stays detectably corrupted for the peer, whose kernel checks it.
//
// The work is batch-first: one recv() of up to `burst` frames, then one
// send() of the replies and one free() of the drops. Bursts and counters are
// allocated once, in the constructor; poll() allocates nothing. The C
// reference (bench/c/xdp_echo.c) implements exactly the same rules.
import { Burst, type Link } from '../link/types.js';
import { InvalidArgumentError } from '../util/errors.js';

/** Why a frame was dropped: the index into UdpEcho.drops. Stable numbers. */
export const EchoDrop = {
  SHORT: 0,
  NOT_IP_OR_ARP: 1,
  IP_HEADER: 2,
  IP_CHECKSUM: 3,
  IP_LENGTH: 4,
  FRAGMENT: 5,
  NOT_UDP: 6,
  NOT_FOR_US: 7,
  ARP_NOT_REQUEST: 8,
  ARP_NOT_FOR_US: 9,
} as const;
export type EchoDropReason = keyof typeof EchoDrop;
export const ECHO_DROP_NAMES: readonly EchoDropReason[] = Object.keys(EchoDrop) as EchoDropReason[];

export interface UdpEchoOptions {
  /** IPv4 addresses (dotted quad) the echo answers for: UDP to them and ARP for them. */
  addrs: readonly string[];
  /** Frames per recv(); default 64. */
  burst?: number;
  /** Only echo datagrams to this UDP port; 0 (default) echoes every port. */
  port?: number;
  /** TTL of the replies; default 64 (Linux's default). */
  ttl?: number;
}

export interface UdpEchoStats {
  rx: number;
  echoed: number;
  arpReplies: number;
  /** Replies the link could not queue (its stats say the same, as txDropped). */
  txDropped: number;
  polls: number;
  emptyPolls: number;
  drops: Record<EchoDropReason, number>;
}

const ETH_ARP = 0x0806;
const ETH_IPV4 = 0x0800;
const IPPROTO_UDP = 17;

// Counter slots in one Float64Array, so a hot increment is a store, never an allocation.
const C_RX = 0, C_ECHOED = 1, C_ARP = 2, C_TXDROP = 3, C_POLLS = 4, C_EMPTY = 5, C_DROP0 = 6;

/** Parses a dotted-quad IPv4 address into a host-order u32. */
export function parseIPv4(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) throw new InvalidArgumentError(`not an IPv4 address: '${s}'`);
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) throw new InvalidArgumentError(`not an IPv4 address: '${s}'`);
    v = v * 256 + o;
  }
  return v >>> 0;
}

export class UdpEcho {
  readonly link: Link;
  readonly burst: number;
  private readonly rx: Burst;
  private readonly tx: Burst;
  private readonly drop: Burst;
  private readonly addrs: Uint32Array;
  private readonly mac: Uint8Array;
  private readonly port: number;
  private readonly ttl: number;
  private readonly c: Float64Array;

  constructor(link: Link, opts: UdpEchoOptions) {
    if (opts.addrs.length === 0) throw new InvalidArgumentError('UdpEcho needs at least one address');
    const burst = opts.burst ?? 64;
    if (!Number.isInteger(burst) || burst < 1 || burst > 4096) throw new InvalidArgumentError(`bad burst ${burst}`);
    const port = opts.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`bad port ${port}`);
    const ttl = opts.ttl ?? 64;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new InvalidArgumentError(`bad ttl ${ttl}`);
    if (link.mac.length !== 6) throw new InvalidArgumentError(`${link.name}: link MAC must be 6 bytes`);
    this.link = link;
    this.burst = burst;
    this.rx = new Burst(burst);
    this.tx = new Burst(burst);
    this.drop = new Burst(burst);
    this.addrs = Uint32Array.from(opts.addrs.map(parseIPv4));
    this.mac = Uint8Array.from(link.mac);
    this.port = port;
    this.ttl = ttl;
    this.c = new Float64Array(C_DROP0 + ECHO_DROP_NAMES.length);
  }

  /**
   * One burst: receive up to `burst` frames, answer what is ours, drop the
   * rest. Every received frame is handed back to the link (send or free)
   * before returning. Returns the number of frames received.
   */
  poll(): number {
    const link = this.link;
    const rx = this.rx;
    const c = this.c;
    rx.count = 0;
    const n = link.recv(rx);
    c[C_POLLS]++;
    if (n === 0) { c[C_EMPTY]++; return 0; }
    c[C_RX] += n;
    const mem = link.mem;
    const desc = rx.desc;
    const tx = this.tx;
    const drop = this.drop;
    for (let i = 0; i < n; i++) {
      const off = desc[2 * i]!;
      const len = desc[2 * i + 1]!;
      const why = this.answer(mem, off, len);
      if (why < 0) tx.push(off, len);
      else { c[C_DROP0 + why]++; drop.push(off, len); }
    }
    if (tx.count > 0) {
      const want = tx.count;
      const sent = link.send(tx);
      c[C_TXDROP] += want - sent;
    }
    if (drop.count > 0) link.free(drop);
    return n;
  }

  /** Rewrites the frame into its reply; returns -1 to send it, or an EchoDrop reason. */
  private answer(m: Uint8Array, f: number, len: number): number {
    if (len < 14) return EchoDrop.SHORT;
    const type = (m[f + 12]! << 8) | m[f + 13]!;
    if (type === ETH_IPV4) {
      if (len < 34) return EchoDrop.SHORT;
      const ip = f + 14;
      const vihl = m[ip]!;
      const ihl = (vihl & 0x0f) << 2;
      if ((vihl >> 4) !== 4 || ihl < 20) return EchoDrop.IP_HEADER;
      const tot = (m[ip + 2]! << 8) | m[ip + 3]!;
      if (tot < ihl + 8 || 14 + tot > len) return EchoDrop.IP_LENGTH;
      let s = 0;
      for (let k = ip; k < ip + ihl; k += 2) s += (m[k]! << 8) | m[k + 1]!;
      s = (s & 0xffff) + (s >>> 16);
      s = (s & 0xffff) + (s >>> 16);
      if (s !== 0xffff) return EchoDrop.IP_CHECKSUM;
      if ((((m[ip + 6]! << 8) | m[ip + 7]!) & 0x3fff) !== 0) return EchoDrop.FRAGMENT;
      if (m[ip + 9] !== IPPROTO_UDP) return EchoDrop.NOT_UDP;
      if (!this.isOurs(((m[ip + 16]! << 24) | (m[ip + 17]! << 16) | (m[ip + 18]! << 8) | m[ip + 19]!) >>> 0)) return EchoDrop.NOT_FOR_US;
      const u = ip + ihl;
      const ulen = (m[u + 4]! << 8) | m[u + 5]!;
      if (ulen < 8 || ulen > tot - ihl) return EchoDrop.IP_LENGTH;
      if (this.port !== 0 && ((m[u + 2]! << 8) | m[u + 3]!) !== this.port) return EchoDrop.NOT_FOR_US;
      swap(m, f, f + 6, 6);
      swap(m, ip + 12, ip + 16, 4);
      swap(m, u, u + 2, 2);
      // TTL and protocol share one 16-bit word of the header.
      const oldWord = (m[ip + 8]! << 8) | m[ip + 9]!;
      m[ip + 8] = this.ttl;
      const newWord = (this.ttl << 8) | m[ip + 9]!;
      const check = (m[ip + 10]! << 8) | m[ip + 11]!;
      let x = (~check & 0xffff) + (~oldWord & 0xffff) + newWord;
      x = (x & 0xffff) + (x >>> 16);
      x = (x & 0xffff) + (x >>> 16);
      x = ~x & 0xffff;
      m[ip + 10] = x >>> 8;
      m[ip + 11] = x & 0xff;
      this.c[C_ECHOED]++;
      return -1;
    }
    if (type === ETH_ARP) {
      if (len < 42) return EchoDrop.SHORT;
      const a = f + 14;
      // Ethernet/IPv4 request (htype 1, ptype 0x0800, hlen 6, plen 4, op 1) only.
      if (m[a] !== 0 || m[a + 1] !== 1 || m[a + 2] !== 0x08 || m[a + 3] !== 0x00 || m[a + 4] !== 6 || m[a + 5] !== 4
        || m[a + 6] !== 0 || m[a + 7] !== 1) return EchoDrop.ARP_NOT_REQUEST;
      const tpa = ((m[a + 24]! << 24) | (m[a + 25]! << 16) | (m[a + 26]! << 8) | m[a + 27]!) >>> 0;
      if (!this.isOurs(tpa)) return EchoDrop.ARP_NOT_FOR_US;
      m[a + 7] = 2;
      // tha := sha, tpa := spa; then sha := our MAC, spa := the asked address (tpa, kept in a local).
      m.copyWithin(a + 18, a + 8, a + 18);
      const mac = this.mac;
      for (let k = 0; k < 6; k++) { m[a + 8 + k] = mac[k]!; m[f + k] = m[f + 6 + k]!; m[f + 6 + k] = mac[k]!; }
      m[a + 14] = tpa >>> 24; m[a + 15] = (tpa >>> 16) & 0xff; m[a + 16] = (tpa >>> 8) & 0xff; m[a + 17] = tpa & 0xff;
      this.c[C_ARP]++;
      return -1;
    }
    return EchoDrop.NOT_IP_OR_ARP;
  }

  private isOurs(a: number): boolean {
    const addrs = this.addrs;
    for (let i = 0; i < addrs.length; i++) if (addrs[i] === a) return true;
    return false;
  }

  /** Frames echoed so far (cheap; no allocation). */
  get echoed(): number { return this.c[C_ECHOED]!; }

  /** A snapshot of the counters (allocates: not for the hot path). */
  stats(): UdpEchoStats {
    const c = this.c;
    const drops = {} as Record<EchoDropReason, number>;
    ECHO_DROP_NAMES.forEach((name, i) => { drops[name] = c[C_DROP0 + i]!; });
    return { rx: c[C_RX]!, echoed: c[C_ECHOED]!, arpReplies: c[C_ARP]!, txDropped: c[C_TXDROP]!, polls: c[C_POLLS]!, emptyPolls: c[C_EMPTY]!, drops };
  }
}

function swap(m: Uint8Array, a: number, b: number, n: number): void {
  for (let k = 0; k < n; k++) { const t = m[a + k]!; m[a + k] = m[b + k]!; m[b + k] = t; }
}

export type EchoMode = 'busy' | 'event';

export interface EchoRunner {
  /** Stops polling and detaches the ready handler. */
  stop(): void;
}

/**
 * Drives an echo until stop(): 'event' polls from the link's ready handler
 * (the libuv loop); 'busy' spins on poll() and yields to the event loop
 * every `spin` polls, so signals and timers still run.
 */
export function runEcho(echo: UdpEcho, mode: EchoMode, spin = 1024): EchoRunner {
  let stopped = false;
  const link = echo.link;
  if (mode === 'event') {
    // Drain until the ring is empty, as the C reference does (peek until
    // nothing, then sleep): frames that arrived while a burst was processed
    // are taken now, not after another trip through epoll. An empty recv()
    // costs one ring peek, no syscall. Give the loop a turn after `spin`
    // bursts so one busy link cannot starve it.
    let scheduled = false;
    const drain = (): void => {
      scheduled = false;
      if (stopped) return;
      for (let k = 0; k < spin; k++) if (echo.poll() === 0) return;
      if (!scheduled) { scheduled = true; setImmediate(drain); }
    };
    link.setReadyHandler(drain);
    drain();
  } else {
    const loop = (): void => {
      if (stopped) return;
      for (let k = 0; k < spin; k++) echo.poll();
      setImmediate(loop);
    };
    setImmediate(loop);
  }
  return {
    stop(): void {
      stopped = true;
      link.setReadyHandler(null);
    },
  };
}
