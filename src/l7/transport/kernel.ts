// The kernel transport: node:net over the Linux TCP stack. The baseline every
// userspace transport is compared against, and the default everywhere.
import * as net from 'node:net';
import type { ConnectionHandler, L7Listener, L7Socket, L7Transport } from './types.js';
import { ConnectError } from './errors.js';

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

  constructor(opts: KernelTransportOptions = {}) {
    this.noDelay = opts.noDelay ?? true;
    this.backlog = opts.backlog ?? 511;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
  }

  listen(port: number, host: string, onConnection: ConnectionHandler): Promise<L7Listener> {
    const noDelay = this.noDelay;
    const server = net.createServer({ noDelay, pauseOnConnect: false }, (s) => onConnection(s));
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

  async close(): Promise<void> {
    const all = [...this.servers];
    this.servers.clear();
    await Promise.all(all.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))));
  }
}
