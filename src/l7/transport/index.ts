// Choosing a transport by name. The kernel transport is always there; the
// stack transports (TAP, AF_XDP) need the userspace TCP stack and root, and
// report themselves unavailable with the reason rather than pretending.
import { UnavailableError } from '../../util/errors.js';
import { KernelTransport, type KernelTransportOptions } from './kernel.js';
import type { L7Transport, TransportKind } from './types.js';
import { openStackTransport, type StackTransportOptions } from './stack.js';

export * from './types.js';
export { ConnectError } from './errors.js';
export { KernelTransport, type KernelTransportOptions } from './kernel.js';
export { openStackTransport, StackTransport, type StackTransportOptions } from './stack.js';

export interface OpenTransportOptions extends KernelTransportOptions, StackTransportOptions {}

export async function openTransport(kind: TransportKind, opts: OpenTransportOptions = {}): Promise<L7Transport> {
  switch (kind) {
    case 'kernel': return new KernelTransport(opts);
    case 'tap':
    case 'afxdp': return openStackTransport(kind, opts);
    default: throw new UnavailableError(`transport '${String(kind)}'`, 'unknown transport (kernel|tap|afxdp)');
  }
}

export function isTransportKind(s: string): s is TransportKind {
  return s === 'kernel' || s === 'tap' || s === 'afxdp';
}
