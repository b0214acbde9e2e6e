// Loads the native addon (build/Release/strata.node) and says, without stack
// traces, which kernel-facing transports can run here.
//
// The addon is thin: sockets, rings, the TAP fd, XDP attach and map syscalls.
// Every ergonomic API is TypeScript (src/link/afxdp.ts, src/link/tap.ts,
// src/xdp/). At load we hand the addon our error classes, so native failures
// are thrown as SystemError / InvalidArgumentError / UnavailableError, and bad
// arguments as ArgumentTypeError (TypeError) / ArgumentRangeError
// (RangeError), each with a stable code (better-sqlite3 does the same).
// The wrappers validate first, for their own messages; the addon checks every
// argument again (64-bit, overflow-free), so no call from JS can make it
// write outside its arrays.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArgumentRangeError, ArgumentTypeError, InvalidArgumentError, SystemError, UnavailableError } from '../util/errors.js';
import { isRoot } from '../util/run.js';

/** Per-socket AF_XDP statistics (native counters + XDP_STATISTICS). */
export interface XskStats {
  rxPackets: number; rxBytes: number; txPackets: number; txBytes: number;
  txDropped: number; txRingFull: number; rxWakeups: number; txWakeups: number; txWakeErrors: number;
  badDescs: number; allocFailed: number; pollEvents: number;
  freeFrames: number; fillOutstanding: number; txOutstanding: number;
  rxDropped?: number; rxInvalidDescs?: number; txInvalidDescs?: number; rxRingFull?: number;
  rxFillRingEmptyDescs?: number; txRingEmptyDescs?: number;
}

export interface XskInfo {
  fd: number; ifindex: number; queue: number; frameSize: number; frameCount: number;
  zerocopy: boolean; needWakeup: boolean; busyPoll: boolean;
  busyPollPrefer: boolean; busyPollUsec: boolean; busyPollBudget: boolean;
}

export interface XskOptions {
  ifname: string; queue: number; netns?: string;
  frameSize?: number; frameCount?: number;
  rxSize?: number; txSize?: number; fillSize?: number; compSize?: number;
  bind?: 'auto' | 'copy' | 'zerocopy';
  needWakeup?: boolean; busyPoll?: boolean; busyPollUsec?: number; busyPollBudget?: number;
}

export interface NativeXsk {
  readonly mem: ArrayBuffer;
  rx(desc: Uint32Array, start: number, max: number): number;
  tx(desc: Uint32Array, n: number): number;
  alloc(desc: Uint32Array, start: number, n: number): number;
  free(desc: Uint32Array, n: number): void;
  kick(): void;
  startPoll(fn: () => void): void;
  stopPoll(): void;
  stats(): XskStats;
  info(): XskInfo;
  close(): void;
}

export interface TapStats {
  rxPackets: number; rxBytes: number; txPackets: number; txBytes: number;
  txDropped: number; txQueueFull: number; readErrors: number; writeErrors: number; badDescs: number; pollEvents: number;
}

export interface NativeTap {
  /** The frame pool: native memory lent to JS (a transfer cannot free it). */
  readonly mem: ArrayBuffer;
  rx(desc: Uint32Array, start: number, max: number): number;
  tx(desc: Uint32Array, n: number): number;
  startPoll(fn: () => void): void;
  stopPoll(): void;
  info(): { fd: number; name: string; ifindex: number; mtu: number; mac: Uint8Array };
  stats(): TapStats;
  close(): void;
}

export interface XdpAttachResult { id: number; ifindex: number; mode: 'native' | 'skb'; log: string }
export interface XdpQueryResult {
  ifindex: number;
  mode: 'native' | 'skb' | 'hw' | 'none';
  legacy: boolean;
  programs: { id: number; name: string; tag: string }[];
}
export interface MapInfo {
  type: number; keySize: number; valueSize: number; maxEntries: number; name: string; id: number;
  perCpu: boolean; valueBytes: number;
}

export interface NativeAddon {
  napiVersion: number;
  Xsk: new (opts: XskOptions) => NativeXsk;
  Tap: new (opts: { name: string; netns?: string; create?: boolean; persist?: boolean }, poolBytes: number) => NativeTap;
  ensureBpffs(path: string): 'present' | 'mounted';
  ifindex(name: string, netns?: string): number;
  ifInfo(name: string, netns?: string): { ifindex: number; mtu: number; mac: Uint8Array };
  xdpAttach(o: { objPath: string; section?: string; ifname: string; netns?: string; mode: 'native' | 'skb'; pinRoot: string }): XdpAttachResult;
  xdpQuery(o: { ifname: string; netns?: string }): XdpQueryResult;
  xdpDetach(o: { ifname: string; netns?: string; id: number }): boolean;
  mapOpen(path: string): number;
  mapClose(fd: number): void;
  mapInfo(fd: number): MapInfo;
  mapLookup(fd: number, key: Uint8Array, value: Uint8Array): boolean;
  mapUpdate(fd: number, key: Uint8Array, value: Uint8Array, flags?: number): void;
  mapDelete(fd: number, key: Uint8Array): boolean;
  mapNextKey(fd: number, key: Uint8Array | null, next: Uint8Array): boolean;
  possibleCpus(): number;
  /** BPF_PROG_TEST_RUN once on a frame; retval is the XDP action. */
  progTestRun(progId: number, frame: Uint8Array): { retval: number; dataOut: Uint8Array };
}

/** Repository root (this file is src/link/native.ts or dist/link/native.js). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const addonPath = join(repoRoot, 'build', 'Release', 'strata.node');
export const bpfObjectPath = join(repoRoot, 'bpf', 'strata_xdp.o');

let cached: NativeAddon | null = null;
let loadError: string | null = null;

function tryLoad(): NativeAddon | null {
  if (cached) return cached;
  if (loadError) return null;
  if (!existsSync(addonPath)) {
    loadError = `native addon not built (${addonPath} missing; run \`npm run build\`)`;
    return null;
  }
  try {
    const req = createRequire(import.meta.url);
    const mod = req(addonPath) as NativeAddon & { init(c: object): void };
    mod.init({ SystemError, InvalidArgumentError, UnavailableError, ArgumentTypeError, ArgumentRangeError });
    cached = mod;
    return mod;
  } catch (e) {
    loadError = `native addon failed to load: ${(e as Error).message.split('\n')[0]}`;
    return null;
  }
}

/** The addon; throws UnavailableError (one line, no stack worth reading) when it cannot load. */
export function loadNative(feature = 'native addon'): NativeAddon {
  const m = tryLoad();
  if (!m) throw new UnavailableError(feature, loadError ?? 'unknown reason');
  return m;
}

export interface TransportStatus { available: boolean; reason?: string }

function afxdpKernelSupport(): string | null {
  // AF_XDP = 44; /proc/net/protocols lists XDP when the family is registered.
  try {
    const protos = readFileSync('/proc/net/protocols', 'utf8');
    if (!/^XDP\s/m.test(protos)) return 'kernel without AF_XDP (no XDP in /proc/net/protocols)';
  } catch { /* cannot tell: let the socket call decide */ }
  return null;
}

/** Whether 'afxdp' and 'tap' can run here, and if not, why. Never throws. */
export function probeTransports(): { afxdp: TransportStatus; tap: TransportStatus } {
  const root = isRoot();
  const addon = tryLoad();
  const base = !root ? 'needs root (CAP_NET_ADMIN, CAP_BPF)' : !addon ? (loadError ?? 'native addon unavailable') : null;
  let afxdp: TransportStatus;
  if (base) afxdp = { available: false, reason: base };
  else if (!existsSync(bpfObjectPath)) afxdp = { available: false, reason: `XDP object not built (${bpfObjectPath} missing; run \`npm run build\`)` };
  else {
    const k = afxdpKernelSupport();
    afxdp = k ? { available: false, reason: k } : { available: true };
  }
  let tap: TransportStatus;
  if (base) tap = { available: false, reason: base };
  else if (!existsSync('/dev/net/tun')) tap = { available: false, reason: 'no /dev/net/tun (load the tun module)' };
  else tap = { available: true };
  return { afxdp, tap };
}
