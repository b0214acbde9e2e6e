// Which transport a listener runs on. `auto` (the default) prefers the
// kernel-bypass paths in order AF_XDP, then TAP, then falls back to the
// kernel's TCP, and always says why each better one was passed over: the
// host (probeTransports: root, addon, XDP object, /dev/net/tun), the device
// (the veth or TAP device the stack would drive must exist where we run),
// and the address (a loopback listener, or one on an address a kernel
// interface holds, e.g. the lab's 10.200.0.2, can only be the kernel's).
//
// The choice is a pure function of a probe so it is tested with injected
// probe results; probeHost() gathers the real ones.
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { ListenerTransport } from '../config/types.js';
import type { TransportKind } from '../l7/transport/types.js';

export interface TransportStatus { available: boolean; reason?: string }

/** What the host offers: the two stack transports (the kernel is always there). */
export interface TransportProbe {
  afxdp: TransportStatus;
  tap: TransportStatus;
  /** Addresses the kernel's own interfaces hold where we run: a listener on one of them is the kernel's. */
  kernelAddrs?: readonly string[];
}

export interface TransportChoice {
  requested: ListenerTransport;
  kind: TransportKind;
  /** One sentence: why this one. */
  reason: string;
  /** The better transports passed over, with why (auto only). */
  skipped: { kind: TransportKind; reason: string }[];
}

const ORDER: readonly ('afxdp' | 'tap')[] = ['afxdp', 'tap'];

function isLoopback(addr: string): boolean {
  if (isIP(addr) === 4) return addr.startsWith('127.');
  return addr === '::1';
}

/**
 * The transport for a listener on `address`. Explicit kinds are returned as
 * asked (opening them fails with the reason when they cannot run); `auto`
 * takes the first available of afxdp, tap, kernel.
 */
export function chooseTransport(requested: ListenerTransport, probe: TransportProbe, address: string): TransportChoice {
  if (requested !== 'auto') return { requested, kind: requested, reason: 'configured', skipped: [] };
  const skipped: { kind: TransportKind; reason: string }[] = [];
  for (const kind of ORDER) {
    const st = probe[kind];
    if (isLoopback(address)) { skipped.push({ kind, reason: 'only the kernel serves loopback' }); continue; }
    if (probe.kernelAddrs?.includes(address)) { skipped.push({ kind, reason: `${address} is a kernel interface's address here` }); continue; }
    if (!st.available) { skipped.push({ kind, reason: st.reason ?? 'not available' }); continue; }
    return { requested, kind, reason: kind === 'afxdp' ? 'AF_XDP is available (preferred)' : 'TAP is available (AF_XDP is not)', skipped };
  }
  const reason = isLoopback(address) ? `listener address ${address} is loopback`
    : probe.kernelAddrs?.includes(address) ? `listener address ${address} belongs to a kernel interface` : 'no kernel-bypass transport is available';
  return { requested, kind: 'kernel', reason, skipped };
}

/** One line for logs: "afxdp (AF_XDP is available)" or "kernel (...; afxdp: why; tap: why)". */
export function describeChoice(c: TransportChoice): string {
  const why = c.skipped.map((s) => `${s.kind}: ${s.reason}`).join('; ');
  return `${c.kind} (${c.reason}${why ? `; ${why}` : ''})`;
}

/**
 * The real probe: probeTransports() (root, addon, XDP object, kernel
 * support, /dev/net/tun) plus whether the device each stack transport would
 * drive exists in the namespace we run in (or `netns`).
 */
export async function probeHost(devices: { afxdp: string; tap: string }, netns?: string): Promise<TransportProbe> {
  const native = await import('../link/native.js');
  const p = native.probeTransports();
  const device = (st: TransportStatus, name: string): TransportStatus => {
    if (!st.available) return st;
    try {
      const n = native.loadNative('transport probe');
      if (n.ifindex(name, netns) === 0) return { available: false, reason: `no interface ${name}${netns ? ` in netns ${netns}` : ' here'} (bring the lab up: strata topo up)` };
    } catch (e) {
      return { available: false, reason: (e as Error).message };
    }
    return st;
  };
  // Our own namespace's addresses (the proxy runs in the lab's server namespace when there is one).
  const kernelAddrs = netns === undefined ? Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)) : [];
  return { afxdp: device(p.afxdp, devices.afxdp), tap: device(p.tap, devices.tap), kernelAddrs };
}
