// Stack transports: the userspace TCP (src/stack/tcp) on a TAP device or an
// AF_XDP socket. The stack is loaded on demand so the kernel path never pays
// for it; when it is not present (or cannot run here) the transport reports
// itself unavailable with the reason.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UnavailableError } from '../../util/errors.js';
import { isRoot } from '../../util/run.js';
import type { L7Transport } from './types.js';

export interface StackTransportOptions {
  /** Interface the stack drives: the TAP device (default tap0) or the veth for AF_XDP (default s0). */
  iface?: string;
  /** The stack's own IPv4 address (default: the lab's tap/afxdp address). */
  addr?: string;
  /** Prefix length for addr (default 24). */
  prefixLen?: number;
  /** Default gateway for the stack. */
  gateway?: string;
}

function stackModulePresent(): boolean {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const ext of ['ts', 'js']) {
    if (existsSync(`${here}../../stack/tcp/index.${ext}`) && existsSync(`${here}../../stack/iface.${ext}`)) return true;
  }
  return false;
}

export async function openStackTransport(kind: 'tap' | 'afxdp', _opts: StackTransportOptions = {}): Promise<L7Transport> {
  const feature = `${kind} transport`;
  if (!stackModulePresent()) throw new UnavailableError(feature, 'the userspace TCP stack (src/stack/tcp, src/stack/iface) is not in this build yet');
  if (!isRoot()) throw new UnavailableError(feature, `needs root (${kind === 'tap' ? '/dev/net/tun' : 'AF_XDP sockets and XDP attach'})`);
  throw new UnavailableError(feature, 'the userspace TCP stack is present but its L7 binding is not wired yet');
}
