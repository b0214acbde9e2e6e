// HTTP/1.1 Upgrade tunnels through the proxy (RFC 9110 §7.8, §15.2.2), as
// Envoy's upgrade_configs do them (Envoy Gateway and Istio enable websocket).
//
// Which upgrades tunnel is the listener's list of protocol names, compared
// case-insensitively (default: websocket). A request whose Upgrade offers
// only listed protocols is taken off HTTP by the server (upgrade.ts) and goes
// through the same request path as any other (policy, routes, filters,
// weights); the proxy then opens a dedicated upstream connection (never a
// pooled one: a switched connection cannot go back) within the cluster's
// max_connections, and sends the request with Upgrade and
// "Connection: upgrade" kept. Connect failures, resets before the response
// and retriable statuses are retried like any bodiless request. A 101 whose
// Upgrade names a protocol the client offered (RFC 9110 §7.8) goes to the
// client, and from then on the tunnel below carries bytes. Any other answer
// is forwarded as a normal response, after which the client connection
// closes. Requests offering anything else are plain requests: Upgrade and
// Connection are stripped like any hop-by-hop field.
//
// A tunnel pipes both ways with backpressure (a side that cannot take more
// pauses the other), passes half-closes on (the end of one side's input ends
// the other's output; both sockets keep their writable side open past the
// peer's FIN, node:net's allowHalfOpen), and an error or reset on either side
// destroys both. Idle time (no byte either way) is bounded by the listener's
// tunnel idle timeout, Envoy's stream_idle_timeout (default 5 min; 0: none),
// checked lazily on the proxy's one timer wheel. The exchange is logged once,
// when the tunnel ends, with status 101 and the bytes each way (Envoy logs an
// upgraded stream at its end too).
import type { L7Socket } from '../transport/types.js';
import type { ServerRequest, UpgradeResponse } from '../server/index.js';
import { Timer } from '../../stack/timers.js';
import type { TimerDriver } from '../server/timers.js';

export const DEFAULT_UPGRADE_TYPES: readonly string[] = ['websocket'];
/** Envoy's stream_idle_timeout default. */
export const DEFAULT_TUNNEL_IDLE_MS = 300_000;

export interface TunnelStats {
  opened: number;
  active: number;
  closed: number;
  /** Bytes from clients to upstreams, and back. */
  bytesToUpstream: number;
  bytesToClient: number;
  idleTimeouts: number;
}

/** Lowercased protocol names an Upgrade field value offers: protocol-name ["/" protocol-version], comma-separated. */
export function upgradeProtocols(v: string | undefined): string[] {
  const out: string[] = [];
  if (v === undefined) return out;
  for (const item of v.split(',')) {
    const t = item.trim();
    if (t === '') continue;
    const slash = t.indexOf('/');
    out.push((slash < 0 ? t : t.slice(0, slash)).toLowerCase());
  }
  return out;
}

/** Whether every protocol the request's Upgrade offers is allowed: only then can the upstream switch to nothing else. */
export function upgradeAllowed(allowed: ReadonlySet<string>, req: ServerRequest): boolean {
  if (allowed.size === 0) return false;
  const offered = upgradeProtocols(req.headers['upgrade']);
  if (offered.length === 0) return false;
  for (const p of offered) if (!allowed.has(p)) return false;
  return true;
}

/** Why the upstream's 101 cannot be passed on, or null (RFC 9110 §7.8: it names what it switched to, from the client's offer). */
export function switchIssue(offered: string | undefined, switched: string | undefined): string | null {
  const to = upgradeProtocols(switched);
  if (to.length === 0) return '101 without an Upgrade field';
  const from = upgradeProtocols(offered);
  for (const p of to) if (!from.includes(p)) return `101 switched to ${JSON.stringify(p)}, which the client did not offer`;
  return null;
}

/** The 101 head for the client: the upstream's end-to-end fields (already filtered) plus Upgrade and Connection. */
export function switchHead(fields: readonly string[], upgrade: string): string {
  let s = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (let i = 0; i + 1 < fields.length; i += 2) s += `${fields[i]!}: ${fields[i + 1]!}\r\n`;
  return `${s}connection: upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
}

/** How a tunnel ended, for the access log: null when both sides closed cleanly. */
export type TunnelEnd = null | 'tunnel_idle_timeout' | 'downstream_reset' | 'upstream_reset' | 'proxy_closed';

export interface TunnelOpen {
  res: UpgradeResponse;
  upstream: L7Socket;
  /** The 101 head for the client. */
  head: string;
  /** Bytes the upstream sent past its 101. */
  upstreamEarly: Buffer;
  /** Called once when the tunnel ends (log it, release the host). */
  onEnd(end: TunnelEnd, bytesToUpstream: number, bytesToClient: number): void;
}

/** The proxy's live tunnels: their counters, idle timeout, and closing them all. */
export class Tunnels {
  readonly stats: TunnelStats = { opened: 0, active: 0, closed: 0, bytesToUpstream: 0, bytesToClient: 0, idleTimeouts: 0 };
  private readonly live = new Set<Tunnel>();

  constructor(readonly timers: TimerDriver, readonly idleMs: number) {}

  open(o: TunnelOpen): void {
    const t = new Tunnel(this, o);
    this.live.add(t);
    t.start();
  }

  /** @internal */ gone(t: Tunnel): void { this.live.delete(t); }

  /** Destroys every tunnel (the proxy is closing). */
  closeAll(): void {
    for (const t of [...this.live]) t.fail('proxy_closed');
  }
}

class Tunnel {
  private readonly client: L7Socket;
  private readonly upstream: L7Socket;
  private toUpstream = 0;
  private toClient = 0;
  private lastActive = 0;
  private clientEnded = false;
  private upstreamEnded = false;
  /** Counted and logged: the tunnel is over, though its sockets may still be flushing. */
  private over = false;
  private closed = 0;
  private readonly idle: Timer;

  constructor(private readonly mgr: Tunnels, private readonly o: TunnelOpen) {
    this.client = o.res.socket;
    this.upstream = o.upstream;
    this.idle = new Timer((now) => this.onIdle(now));
  }

  start(): void {
    const { client, upstream, o } = this;
    const st = this.mgr.stats;
    st.opened++;
    st.active++;
    // A half-closed side may still send: keep each writable side open past its peer's FIN.
    client.allowHalfOpen = true;
    upstream.allowHalfOpen = true;
    o.res.switchProtocols(o.head);
    if (o.upstreamEarly.length > 0) this.down(o.upstreamEarly);
    if (o.res.early.length > 0) this.up(o.res.early);
    client.on('data', this.onClientData);
    upstream.on('data', this.onUpstreamData);
    client.on('drain', this.onClientDrain);
    upstream.on('drain', this.onUpstreamDrain);
    client.on('end', this.onClientEnd);
    upstream.on('end', this.onUpstreamEnd);
    client.on('error', this.onClientError);
    upstream.on('error', this.onUpstreamError);
    client.on('close', this.onClientClose);
    upstream.on('close', this.onUpstreamClose);
    this.lastActive = this.mgr.timers.now();
    if (this.mgr.idleMs > 0) this.mgr.timers.arm(this.idle, this.lastActive + this.mgr.idleMs);
    client.resume();
    upstream.resume();
  }

  private up(c: Buffer): void {
    this.toUpstream += c.length;
    this.mgr.stats.bytesToUpstream += c.length;
    if (!this.upstream.write(c)) this.client.pause();
  }

  private down(c: Buffer): void {
    this.toClient += c.length;
    this.o.res.wireBytes += c.length; // the exchange's response bytes, for its flow record
    this.mgr.stats.bytesToClient += c.length;
    if (!this.client.write(c)) this.upstream.pause();
  }

  // Activity is a timestamp, not a re-armed timer: the idle timer re-arms itself from it when it fires.
  private readonly onClientData = (c: Buffer): void => { this.lastActive = this.mgr.timers.now(); this.up(c); };
  private readonly onUpstreamData = (c: Buffer): void => { this.lastActive = this.mgr.timers.now(); this.down(c); };
  private readonly onClientDrain = (): void => { this.upstream.resume(); };
  private readonly onUpstreamDrain = (): void => { this.client.resume(); };

  // Half-close: the end of one side's input ends the other side's output.
  private readonly onClientEnd = (): void => { this.clientEnded = true; this.upstream.end(); this.maybeDone(); };
  private readonly onUpstreamEnd = (): void => { this.upstreamEnded = true; this.client.end(); this.maybeDone(); };
  private readonly onClientError = (): void => { this.fail('downstream_reset'); };
  private readonly onUpstreamError = (): void => { this.fail('upstream_reset'); };
  // A side that closes before both directions ended cleanly was reset (or destroyed): the other goes too.
  private readonly onClientClose = (): void => { if (!this.over) this.fail('downstream_reset'); this.socketClosed(); };
  private readonly onUpstreamClose = (): void => { if (!this.over) this.fail('upstream_reset'); this.socketClosed(); };

  private maybeDone(): void {
    if (this.clientEnded && this.upstreamEnded) this.finish(null);
  }

  private socketClosed(): void {
    if (++this.closed < 2) return;
    this.mgr.timers.cancel(this.idle);
    this.mgr.gone(this);
  }

  private onIdle(now: number): void {
    if (this.over) {
      // Ended cleanly, but a socket is still flushing to a peer that does not read: reap it.
      this.client.destroy();
      this.upstream.destroy();
      return;
    }
    const due = this.lastActive + this.mgr.idleMs;
    if (now < due) { this.mgr.timers.arm(this.idle, due); return; }
    this.mgr.stats.idleTimeouts++;
    this.fail('tunnel_idle_timeout');
  }

  fail(end: Exclude<TunnelEnd, null>): void {
    this.finish(end);
    this.client.destroy();
    this.upstream.destroy();
  }

  private finish(end: TunnelEnd): void {
    if (this.over) return;
    this.over = true;
    const st = this.mgr.stats;
    st.active--;
    st.closed++;
    this.o.onEnd(end, this.toUpstream, this.toClient);
    this.o.res.tunnelDone(end === null);
    if (end === null && this.mgr.idleMs > 0) this.mgr.timers.arm(this.idle, this.mgr.timers.now() + this.mgr.idleMs);
  }
}
