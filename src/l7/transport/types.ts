import type { L4DenyEntry } from '../policy/types.js';
import type { L4DenyReport } from './l4deny.js';
// The transport seam: the one interface that lets the same L7 code (server,
// proxy, upstream pools) run over the kernel's TCP (node:net), the userspace
// stack on TAP, and the userspace stack on AF_XDP. Everything above this file
// sees a Duplex with node:net's shape; nothing above it knows which TCP
// carries the bytes, which is what makes the transport comparison fair.
import type { Duplex } from 'node:stream';

export type TransportKind = 'kernel' | 'tap' | 'afxdp';
export const TRANSPORT_KINDS: readonly TransportKind[] = ['kernel', 'tap', 'afxdp'];

/** A connected byte stream: node:net.Socket or the stack's TcpSocket. */
export interface L7Socket extends Duplex {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  setNoDelay?(noDelay?: boolean): unknown;
}

export type ConnectionHandler = (socket: L7Socket) => void;

export interface L7Listener {
  readonly host: string;
  /** The bound port (the kernel's choice when 0 was asked for). */
  readonly port: number;
  /** Stops accepting; open connections are left to their owners. */
  close(): Promise<void>;
}

export interface L7Transport {
  readonly kind: TransportKind;
  listen(port: number, host: string, onConnection: ConnectionHandler): Promise<L7Listener>;
  /** Resolves once the connection is established; rejects with ConnectError. */
  connect(port: number, host: string): Promise<L7Socket>;
  /** Releases whatever the transport owns (the stack, its link); idempotent. */
  close(): Promise<void>;
  /**
   * Replaces the L3/L4 deny rules (source prefix, optional destination port)
   * enforced at this transport's earliest layer: XDP on AF_XDP, conntrack on
   * TAP, accept() on the kernel. See l4deny.ts.
   */
  setL4Deny(entries: readonly L4DenyEntry[]): L4DenyReport;
}
