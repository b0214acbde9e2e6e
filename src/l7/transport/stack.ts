// Stack transports: strata's userspace TCP (src/stack/tcp) on a TAP device
// or an AF_XDP socket, behind the same L7Transport seam as node:net. The
// stack, link and XDP program are loaded on demand so the kernel path never
// pays for them; when they cannot run here (no root, no addon, no XDP
// object, no /dev/net/tun) the transport reports itself unavailable with the
// reason instead of pretending.
//
// One transport owns one Stack on one Link, driven by runStack() (one timer
// for the whole stack). Listeners are TcpServers, connections TcpSockets,
// both node:net-shaped, so the HTTP server and the proxy's upstream pools run
// on them unchanged.
import { UnavailableError } from '../../util/errors.js';
import { isRoot } from '../../util/run.js';
import type { ConnectionHandler, L7Listener, L7Socket, L7Transport } from './types.js';
import { ConnectError } from './errors.js';
import type { Link } from '../../link/types.js';
import type { Stack, StackDriver } from '../../stack/iface.js';
import type { Tcp } from '../../stack/tcp/tcp.js';
import type { XdpProgram } from '../../xdp/program.js';
import type { L4DenyEntry } from '../policy/types.js';
import type { L4DenyReport } from './l4deny.js';

export interface StackTransportOptions {
  /** Interface the stack drives: the TAP device (default tap0) or the veth for AF_XDP (default s0). */
  iface?: string;
  /** The stack's own IPv4 address (default: the lab's tap or afxdp address). */
  addr?: string;
  /** Prefix length for addr (default 24). */
  prefixLen?: number;
  /** Default gateway for the stack (TAP default: the kernel side, 10.201.0.1). */
  gateway?: string;
  /** Network namespace holding iface (default: the current one). */
  netns?: string;
  /** bpffs directory for the XDP program's pins (AF_XDP). */
  pinDir?: string;
  /** AF_XDP queue (default 0). */
  queue?: number;
}

const DEFAULTS = {
  tap: { iface: 'tap0', addr: '10.201.0.2', gateway: '10.201.0.1' },
  afxdp: { iface: 's0', addr: '10.200.0.3', gateway: undefined as string | undefined },
} as const;

export class StackTransport implements L7Transport {
  private closed = false;
  private readonly servers = new Set<{ close(cb?: () => void): unknown }>();

  private constructor(
    readonly kind: 'tap' | 'afxdp',
    readonly link: Link,
    readonly stack: Stack,
    readonly tcp: Tcp,
    private readonly driver: StackDriver,
    private readonly prog: XdpProgram | null,
    private readonly socketMod: typeof import('../../stack/tcp/socket.js'),
    readonly conntrack: import('../../stack/conntrack/index.js').Conntrack,
    private readonly ctDenyPolicy: typeof import('../../stack/conntrack/index.js').ctDenyPolicy,
  ) {}

  /** The XDP program's verdict counters (summed over CPUs), or null off AF_XDP or once closed. */
  xdpCounters(): ReturnType<XdpProgram['counters']> | null {
    if (this.prog === null || this.closed) return null;
    try { return this.prog.counters(); } catch { return null; }
  }

  /** Packets dropped by L3/L4 policy at this transport's layer: XDP's deny_drop, or conntrack's policy drops. */
  policyDrops(): number {
    return this.prog !== null ? this.prog.counters().deny_drop.packets : this.conntrack.invalid.get('policy');
  }

  /** The XDP program's deny maps on AF_XDP (dropped in the driver), else the conntrack policy (dropped at IP input). */
  setL4Deny(entries: readonly L4DenyEntry[]): L4DenyReport {
    if (this.prog !== null) {
      for (const d of this.prog.denials()) this.prog.allow(d);
      for (const e of entries) this.prog.deny({ prefix: e.prefix, ...(e.port !== undefined ? { dstPort: e.port } : {}) });
      return { where: 'xdp', installed: entries.length, skipped: [] };
    }
    const p = this.ctDenyPolicy(entries);
    this.conntrack.setPolicy(p.policy);
    return {
      where: 'conntrack', installed: p.rules,
      skipped: entries.filter((e) => e.family === 6).map((e) => ({ prefix: e.prefix, reason: 'conntrack tracks IPv4 only' })),
    };
  }

  static async open(kind: 'tap' | 'afxdp', opts: StackTransportOptions = {}): Promise<StackTransport> {
    const feature = `${kind} transport`;
    if (!isRoot()) throw new UnavailableError(feature, `needs root (${kind === 'tap' ? '/dev/net/tun' : 'AF_XDP sockets and XDP attach'})`);
    const native = await import('../../link/native.js');
    const st = native.probeTransports()[kind];
    if (!st.available) throw new UnavailableError(feature, st.reason ?? 'not available on this host');
    const [{ Stack, runStack }, { Tcp }, socketMod] = await Promise.all([
      import('../../stack/iface.js'), import('../../stack/tcp/tcp.js'), import('../../stack/tcp/socket.js'),
    ]);
    const d = DEFAULTS[kind];
    const iface = opts.iface ?? d.iface;
    const addr = opts.addr ?? d.addr;
    const gateway = opts.gateway ?? d.gateway;
    let link: Link;
    let prog: XdpProgram | null = null;
    try {
      if (kind === 'tap') {
        const { TapLink } = await import('../../link/tap.js');
        link = TapLink.open({ name: iface, ...(opts.netns ? { netns: opts.netns } : {}) });
      } else {
        const [{ AfXdpLink }, { XdpProgram }] = await Promise.all([import('../../link/afxdp.js'), import('../../xdp/program.js')]);
        prog = XdpProgram.attach({ iface, ...(opts.netns ? { netns: opts.netns } : {}), ...(opts.pinDir ? { pinDir: opts.pinDir } : {}), mode: 'auto' });
        prog.steer({ addr });
        link = AfXdpLink.open({ iface, queue: opts.queue ?? 0, xdp: prog, ...(opts.netns ? { netns: opts.netns } : {}) });
      }
    } catch (e) {
      prog?.detach();
      throw new UnavailableError(feature, `cannot open ${iface}: ${(e as Error).message}`, { cause: e });
    }
    // Every flow the dataplane terminates is tracked (and L3/L4 policy enforced there on TAP).
    const { Conntrack, ctDenyPolicy } = await import('../../stack/conntrack/index.js');
    const conntrack = new Conntrack();
    const stack = new Stack({ link, addrs: [{ addr, prefixLen: opts.prefixLen ?? 24 }], ...(gateway ? { gateway } : {}), conntrack });
    const tcp = Tcp.attach(stack);
    const driver = runStack(stack);
    return new StackTransport(kind, link, stack, tcp, driver, prog, socketMod, conntrack, ctDenyPolicy);
  }

  listen(port: number, host: string, onConnection: ConnectionHandler): Promise<L7Listener> {
    const server = new this.socketMod.TcpServer(this.tcp, { noDelay: true }, (s) => onConnection(s as unknown as L7Socket));
    this.servers.add(server);
    return new Promise((resolve, reject) => {
      server.once('error', (e: Error) => { this.servers.delete(server); reject(e); });
      server.listen(port, host, () => {
        const a = server.address()!;
        resolve({
          host: a.address,
          port: a.port,
          close: () => new Promise<void>((res) => {
            this.servers.delete(server);
            // node:net semantics: 'close' waits for every connection; the owners close those.
            server.close();
            res();
          }),
        });
      });
    });
  }

  connect(port: number, host: string): Promise<L7Socket> {
    return new Promise((resolve, reject) => {
      const s = this.socketMod.connect(this.tcp, port, host, undefined, { noDelay: true });
      const onErr = (e: Error & { code?: string }): void => { reject(new ConnectError(host, port, e.code ?? e.message, { cause: e })); };
      s.once('error', onErr);
      s.once('connect', () => { s.off('error', onErr); resolve(s as unknown as L7Socket); });
    });
  }

  /**
   * Stops listening, then ends what is left the way a kernel would for a
   * process that exits: connections their owners already closed get up to
   * lingerMs (default 250) to finish the FIN exchange while the stack keeps
   * running; every connection still not over after that (still open, or
   * its peer slow) is reset, and the RSTs are sent before the link closes.
   * Peers are never left holding a connection that nobody answers.
   */
  async close(lingerMs = 250): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.servers) s.close();
    this.servers.clear();
    const clock = this.stack.clock;
    const until = clock.now() + lingerMs;
    while (this.tcp.closing() > 0 && clock.now() < until) await new Promise((r) => setTimeout(r, 2));
    const now = clock.now();
    if (this.tcp.abortAll(now) > 0) this.stack.poll(now);
    this.driver.stop();
    this.stack.close();
    this.link.close();
    this.prog?.detach();
  }
}

export async function openStackTransport(kind: 'tap' | 'afxdp', opts: StackTransportOptions = {}): Promise<L7Transport> {
  return StackTransport.open(kind, opts);
}
