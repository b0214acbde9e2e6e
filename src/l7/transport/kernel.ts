// The kernel transport: node:net over the Linux TCP stack. The baseline every
// userspace transport is compared against, and the default everywhere.
import * as net from 'node:net';
import type { ConnectionHandler, L7Listener, L7Socket, L7Transport } from './types.js';
import { ConnectError } from './errors.js';
import { L4DenyMatcher, type L4DenyReport } from './l4deny.js';
import type { L4DenyEntry } from '../policy/types.js';

export interface KernelTransportOptions {
  /** Disable Nagle on every socket (default true: request/response traffic). */
  noDelay?: boolean;
  /** listen() backlog (default 511, like node:http). */
  backlog?: number;
  /** connect() gives up after this many ms (default 10 000). */
  connectTimeoutMs?: number;
}

export class KernelTransport implements L7Transport {
  readonly kind = 'kernel' as const;
  private readonly servers = new Set<net.Server>();
  private readonly noDelay: boolean;
  private readonly backlog: number;
  private readonly connectTimeoutMs: number;
  /** L3/L4 denies, checked at accept(): the kernel already finished the handshake, so no byte is read. */
  private deny: L4DenyMatcher | null = null;

  constructor(opts: KernelTransportOptions = {}) {
    this.noDelay = opts.noDelay ?? true;
    this.backlog = opts.backlog ?? 511;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  }

  listen(port: number, host: string, onConnection: ConnectionHandler): Promise<L7Listener> {
    const noDelay = this.noDelay;
    const server = net.createServer({ noDelay, pauseOnConnect: false }, (s) => {
      const d = this.deny;
      if (d !== null && d.denies(s.remoteAddress ?? '', s.localPort ?? port)) { d.refused++; s.destroy(); return; }
      onConnection(s);
    });
    this.servers.add(server);
    return new Promise((resolve, reject) => {
      const onErr = (e: Error): void => { this.servers.delete(server); reject(e); };
      server.once('error', onErr);
      server.listen({ port, host, backlog: this.backlog }, () => {
        server.off('error', onErr);
        const addr = server.address() as net.AddressInfo;
        const servers = this.servers;
        resolve({
          host: addr.address,
          port: addr.port,
          close: () => new Promise<void>((res) => {
            servers.delete(server);
            if (!server.listening) { res(); return; }
            server.close(() => res());
          }),
        });
      });
    });
  }

  connect(port: number, host: string): Promise<L7Socket> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, noDelay: this.noDelay });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new ConnectError(host, port, 'timed out'));
      }, this.connectTimeoutMs);
      const onErr = (e: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        reject(new ConnectError(host, port, e.code ?? e.message, { cause: e }));
      };
      s.once('error', onErr);
      s.once('connect', () => {
        clearTimeout(timer);
        s.off('error', onErr);
        resolve(s);
      });
    });
  }

  setL4Deny(entries: readonly L4DenyEntry[]): L4DenyReport {
    const m = new L4DenyMatcher(entries);
    if (this.deny !== null) m.refused = this.deny.refused;
    this.deny = m.size > 0 ? m : null;
    return { where: 'accept', installed: m.size, skipped: [] };
  }

  /** Connections closed at accept() by an L3/L4 deny rule. */
  get refusedByPolicy(): number { return this.deny?.refused ?? 0; }

  async close(): Promise<void> {
    const all = [...this.servers];
    this.servers.clear();
    await Promise.all(all.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}
