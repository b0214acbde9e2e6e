// UDP (RFC 768, RFC 1122 §4.1) and sockets shaped like node:dgram.
//
// UdpLayer is the TransportDispatcher for protocol 17: it validates each
// datagram (length; checksum, where zero means "none" for IPv4), finds the
// socket bound to (dst, port) - an exact address before the wildcard - and
// otherwise answers ICMP port unreachable (not for broadcasts) and counts
// UDP_NO_SOCKET. Ephemeral ports come from Linux's ip_local_port_range
// (32768-60999), starting at a random point.
//
// UdpSocket is an EventEmitter like dgram.Socket: bind(), send(), close(),
// address(), connect()/disconnect(), and 'listening', 'message' (msg, rinfo),
// 'error', 'close'. A connected socket gets ICMP errors about its peer as
// 'error' events (ECONNREFUSED for port unreachable), as Linux reports them
// on connected UDP sockets. Messages are copied into a Buffer for the
// listener (the frame goes back to the link); setReceiveHandler() offers a
// zero-copy callback instead, for fast paths.
import { EventEmitter } from 'node:events';
import { IPPROTO, ip4FromString, ip4ToString, type TransportDispatcher } from './registration.js';
import { DROP } from './stats.js';
import type { Stack } from './iface.js';
import { UDP, WIRE_OK } from './wire/index.js';
import { udpCheck, udpDstPort, udpEmit, udpLength, udpSrcPort } from './wire/udp.js';
import { IP4 } from './wire/ipv4.js';
import { ICMP_TYPE, ICMP_UNREACH } from './wire/icmp.js';
import { InvalidArgumentError, StrataError } from '../util/errors.js';

export const EPHEMERAL_LOW = 32768;
export const EPHEMERAL_HIGH = 60999;
/** Largest UDP payload over IPv4: 65535 - 20 - 8. */
export const UDP_MAX_PAYLOAD = 65507;

/** Socket errors, with errno-style codes in `code` (EADDRINUSE, ECONNREFUSED …) like node's. */
export class UdpSocketError extends StrataError {
  constructor(code: string, message: string, readonly syscall: string) { super(code, message); }
}

export interface RemoteInfo { address: string; family: 'IPv4'; port: number; size: number }
/** Zero-copy receive: buf[off, off+len) is the payload, valid only during the call. */
export type UdpReceiveHandler = (buf: Uint8Array, off: number, len: number, src: number, srcPort: number, now: number) => void;

export class UdpLayer implements TransportDispatcher {
  readonly protocol = IPPROTO.UDP;
  /** port -> sockets bound to it (distinct local addresses). */
  private readonly ports = new Map<number, UdpSocket[]>();
  private nextEphemeral: number;
  /** Scratch for datagrams larger than a frame: 20 bytes of IP headroom + UDP. */
  private scratch = new Uint8Array(IP4.HLEN + UDP.HLEN + 2048);
  /** Reused send options (no object per datagram). */
  private readonly ttlOpts = { ttl: 64 };

  constructor(readonly stack: Stack) {
    this.nextEphemeral = EPHEMERAL_LOW + (stack.random() % (EPHEMERAL_HIGH - EPHEMERAL_LOW + 1));
  }

  createSocket(): UdpSocket { return new UdpSocket(this); }

  deliver(src: number, dst: number, buf: Uint8Array, off: number, len: number, now: number): void {
    const st = this.stack.stats;
    const r = udpCheck(buf, off, len, src, dst);
    if (r !== WIRE_OK) { st.drop(r); return; }
    const sock = this.find(dst, udpDstPort(buf, off), src, udpSrcPort(buf, off));
    if (sock === null) {
      st.drop(DROP.UDP_NO_SOCKET);
      if (!this.stack.isBroadcast(dst)) this.stack.icmp.portUnreachable(now);
      return;
    }
    st.udpRxDatagrams++;
    sock.receive(buf, off + UDP.HLEN, udpLength(buf, off) - UDP.HLEN, src, udpSrcPort(buf, off), now);
  }

  deliverError(type: number, code: number, _mtu: number, src: number, dst: number, quoted: Uint8Array, off: number, len: number, _now: number): void {
    if (len < UDP.HLEN) return;
    const sock = this.find(src, udpSrcPort(quoted, off), dst, udpDstPort(quoted, off));
    if (sock === null) return;
    sock.icmpError(type, code, dst, udpDstPort(quoted, off));
  }

  private find(addr: number, port: number, peer: number, peerPort: number): UdpSocket | null {
    const list = this.ports.get(port);
    if (list === undefined) return null;
    let wildcard: UdpSocket | null = null;
    for (let i = 0; i < list.length; i++) {
      const s = list[i]!;
      // A connected socket only hears from its peer.
      if (s.remoteAddr !== 0 && (s.remoteAddr !== peer || s.remotePort !== peerPort)) continue;
      if (s.localAddr === addr) return s;
      if (s.localAddr === 0) wildcard = s;
    }
    return wildcard;
  }

  /** Binds sock to (addr, port); port 0 picks an ephemeral port. Returns the port. */
  bind(sock: UdpSocket, addr: number, port: number): number {
    if (addr !== 0 && !this.stack.isLocal(addr)) throw new UdpSocketError('EADDRNOTAVAIL', `bind EADDRNOTAVAIL ${ip4ToString(addr)}`, 'bind');
    if (port === 0) {
      const span = EPHEMERAL_HIGH - EPHEMERAL_LOW + 1;
      for (let k = 0; k < span; k++) {
        const p = this.nextEphemeral;
        this.nextEphemeral = p === EPHEMERAL_HIGH ? EPHEMERAL_LOW : p + 1;
        if (!this.ports.has(p)) { port = p; break; }
      }
      if (port === 0) throw new UdpSocketError('EADDRINUSE', 'bind EADDRINUSE: no ephemeral port free', 'bind');
    } else {
      const list = this.ports.get(port);
      if (list !== undefined && list.some((s) => s.localAddr === 0 || addr === 0 || s.localAddr === addr)) {
        throw new UdpSocketError('EADDRINUSE', `bind EADDRINUSE ${ip4ToString(addr)}:${port}`, 'bind');
      }
    }
    let list = this.ports.get(port);
    if (list === undefined) { list = []; this.ports.set(port, list); }
    list.push(sock);
    return port;
  }

  unbind(sock: UdpSocket): void {
    const list = this.ports.get(sock.localPort);
    if (list === undefined) return;
    const i = list.indexOf(sock);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.ports.delete(sock.localPort);
  }

  /** Bound sockets (for leak checks). */
  get bound(): number { let n = 0; for (const l of this.ports.values()) n += l.length; return n; }

  /**
   * Sends one datagram; payload = data[off, off+len). Returns null or the
   * reason it was not sent. Small datagrams are written straight into a
   * frame; larger ones go through a scratch buffer and are fragmented.
   */
  send(srcAddr: number, srcPort: number, dst: number, dstPort: number, data: Uint8Array, off: number, len: number, now: number, ttl = 0, broadcast = true): UdpSocketError | null {
    const stack = this.stack;
    const ip = stack.ipv4;
    // Linux: sending to a broadcast address needs SO_BROADCAST.
    if (!broadcast && stack.isBroadcast(dst)) return new UdpSocketError('EACCES', `send EACCES ${ip4ToString(dst)}`, 'send');
    const opts = ttl > 0 ? this.ttlOpts : undefined;
    if (ttl > 0) this.ttlOpts.ttl = ttl;
    if (len > UDP_MAX_PAYLOAD) { stack.stats.drop(DROP.UDP_TOO_BIG); return new UdpSocketError('EMSGSIZE', 'send EMSGSIZE', 'send'); }
    const ulen = UDP.HLEN + len;
    const o = ip.begin(dst, IPPROTO.UDP, now);
    if (o < 0) return new UdpSocketError('EHOSTUNREACH', `send EHOSTUNREACH ${ip4ToString(dst)}`, 'send');
    const src = srcAddr !== 0 ? srcAddr : ip.src;
    if (ulen <= ip.room) {
      copyInto(stack.mem, o + UDP.HLEN, data, off, len);
      udpEmit(stack.mem, o, srcPort, dstPort, ulen, src, dst);
      stack.stats.udpTxDatagrams++;
      ip.commit(ulen, now, opts);
      return null;
    }
    ip.abort();
    if (this.scratch.length < IP4.HLEN + ulen) this.scratch = new Uint8Array(Math.ceil((IP4.HLEN + ulen) / 4096) * 4096);
    const b = this.scratch;
    b.set(data.subarray(off, off + len), IP4.HLEN + UDP.HLEN);
    udpEmit(b, IP4.HLEN, srcPort, dstPort, ulen, src, dst);
    stack.stats.udpTxDatagrams++;
    ip.sendDatagram(dst, IPPROTO.UDP, b, IP4.HLEN, ulen, now, opts);
    return null;
  }
}

type SendCallback = (err: Error | null, bytes?: number) => void;

export class UdpSocket extends EventEmitter {
  localAddr = 0;
  localPort = 0;
  remoteAddr = 0;
  remotePort = 0;
  private bound = false;
  private closed = false;
  private handler: UdpReceiveHandler | null = null;
  private ttl = 0;
  private broadcast = false;

  constructor(private readonly layer: UdpLayer) { super(); }

  /** bind(port?, address?, cb?) or bind({ port, address }, cb?), like dgram. Binding is immediate; 'listening' follows on the next tick. */
  bind(port?: number | { port?: number; address?: string }, address?: string | (() => void), cb?: () => void): this {
    if (typeof port === 'object' && port !== null) { cb = address as (() => void) | undefined; address = port.address; port = port.port; }
    if (typeof address === 'function') { cb = address; address = undefined; }
    this.checkOpen();
    if (this.bound) throw new UdpSocketError('ERR_SOCKET_ALREADY_BOUND', 'Socket is already bound', 'bind');
    const p = port ?? 0;
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new InvalidArgumentError(`bad port ${String(port)}`);
    const a = address === undefined || address === '0.0.0.0' ? 0 : parseAddr(address);
    this.localPort = this.layer.bind(this, a, p);
    this.localAddr = a;
    this.bound = true;
    if (cb) this.once('listening', cb);
    process.nextTick(() => { if (!this.closed) this.emit('listening'); });
    return this;
  }

  /** Associates the socket with one peer: only its datagrams are received and ICMP errors are reported. */
  connect(port: number, address?: string | (() => void), cb?: () => void): void {
    if (typeof address === 'function') { cb = address; address = undefined; }
    this.checkOpen();
    if (!this.bound) this.bind(0);
    this.remoteAddr = parseAddr(address ?? '127.0.0.1');
    this.remotePort = port;
    process.nextTick(() => { if (!this.closed) { this.emit('connect'); cb?.(); } });
  }

  disconnect(): void { this.remoteAddr = 0; this.remotePort = 0; }

  remoteAddress(): { address: string; family: 'IPv4'; port: number } {
    if (this.remoteAddr === 0) throw new UdpSocketError('ERR_SOCKET_DGRAM_NOT_CONNECTED', 'Not connected', 'getpeername');
    return { address: ip4ToString(this.remoteAddr), family: 'IPv4', port: this.remotePort };
  }

  /**
   * send(msg, port?, address?, cb?) or send(msg, offset, length, port?, address?, cb?),
   * like dgram. msg: Buffer, Uint8Array, string or an array of them.
   */
  send(msg: Uint8Array | string | readonly (Uint8Array | string)[], ...args: unknown[]): void {
    this.checkOpen();
    let data: Uint8Array;
    if (typeof msg === 'string') data = Buffer.from(msg);
    else if (Array.isArray(msg)) data = Buffer.concat(msg.map((m) => (typeof m === 'string' ? Buffer.from(m) : m)));
    else data = msg as Uint8Array;
    let off = 0;
    let len = data.length;
    let cb: SendCallback | undefined;
    if (typeof args[args.length - 1] === 'function') cb = args.pop() as SendCallback;
    // (offset, length, …) when three or more remain, or two numbers.
    if (args.length >= 3 || (args.length === 2 && typeof args[1] === 'number')) {
      off = args.shift() as number;
      len = args.shift() as number;
    }
    let port = this.remotePort;
    let addr = this.remoteAddr;
    if (this.remoteAddr === 0) {
      port = args[0] as number;
      addr = parseAddr(typeof args[1] === 'string' ? args[1] : '127.0.0.1');
    } else if (args.length > 0) {
      throw new UdpSocketError('ERR_SOCKET_DGRAM_IS_CONNECTED', 'Already connected', 'send');
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError(`bad port ${String(port)}`);
    if (!(off >= 0 && len >= 0 && off + len <= data.length)) throw new InvalidArgumentError('offset/length out of range');
    if (!this.bound) this.bind(0);
    const stack = this.layer.stack;
    const err = this.layer.send(this.localAddr, this.localPort, addr, port, data, off, len, stack.clock.now(), this.ttl, this.broadcast);
    stack.kick();
    if (cb) process.nextTick(cb, err, err ? undefined : len);
    else if (err) process.nextTick(() => this.emit('error', err));
  }

  address(): { address: string; family: 'IPv4'; port: number } {
    if (!this.bound) throw new UdpSocketError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running', 'getsockname');
    return { address: ip4ToString(this.localAddr), family: 'IPv4', port: this.localPort };
  }

  close(cb?: () => void): this {
    if (this.closed) return this;
    this.closed = true;
    if (this.bound) this.layer.unbind(this);
    if (cb) this.once('close', cb);
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** IP TTL of datagrams sent (1..255), like dgram's setTTL. Returns ttl. */
  setTTL(ttl: number): number {
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) throw new InvalidArgumentError('ttl must be 1..255');
    this.ttl = ttl;
    return ttl;
  }

  /** Allows sending to broadcast addresses (SO_BROADCAST), like dgram's setBroadcast. */
  setBroadcast(flag: boolean): void { this.broadcast = flag; }

  /** Replaces the 'message' event with a zero-copy callback (null restores events). */
  setReceiveHandler(fn: UdpReceiveHandler | null): void { this.handler = fn; }

  ref(): this { return this; }
  unref(): this { return this; }

  /** @internal from UdpLayer */
  receive(buf: Uint8Array, off: number, len: number, src: number, srcPort: number, now: number): void {
    if (this.handler !== null) { this.handler(buf, off, len, src, srcPort, now); return; }
    const msg = Buffer.from(buf.subarray(off, off + len));
    this.emit('message', msg, { address: ip4ToString(src), family: 'IPv4', port: srcPort, size: len } satisfies RemoteInfo);
  }

  /** @internal an ICMP error about a datagram this socket sent to (dst, dstPort). */
  icmpError(type: number, code: number, dst: number, dstPort: number): void {
    if (this.remoteAddr === 0 || this.remoteAddr !== dst || this.remotePort !== dstPort) return;
    const refused = type === ICMP_TYPE.DEST_UNREACHABLE && (code === ICMP_UNREACH.PORT || code === ICMP_UNREACH.PROTOCOL);
    const e = refused
      ? new UdpSocketError('ECONNREFUSED', `recv ECONNREFUSED ${ip4ToString(dst)}:${dstPort}`, 'recv')
      : new UdpSocketError('EHOSTUNREACH', `recv EHOSTUNREACH ${ip4ToString(dst)}:${dstPort} (ICMP ${type}/${code})`, 'recv');
    this.emit('error', e);
  }

  private checkOpen(): void {
    if (this.closed) throw new UdpSocketError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running', 'send');
  }
}

/** Copies src[off, off+len) to dst[at…] without making a subarray view (no allocation for small copies). */
function copyInto(dst: Uint8Array, at: number, src: Uint8Array, off: number, len: number): void {
  if (off === 0 && len === src.length) { dst.set(src, at); return; }
  if (len > 512) { dst.set(src.subarray(off, off + len), at); return; }
  for (let i = 0; i < len; i++) dst[at + i] = src[off + i]!;
}

function parseAddr(s: string): number {
  const a = ip4FromString(s === 'localhost' ? '127.0.0.1' : s);
  if (a < 0) throw new InvalidArgumentError(`not an IPv4 address: ${s}`);
  return a;
}
