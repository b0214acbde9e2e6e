// A strata stack serving a private lab, for the acceptance tests
// (test/stack-accept-*.test.ts): the Stack, its Tcp and (optionally) a
// conntrack table on a TapLink or an AfXdpLink in the lab's server
// namespace, driven by runStack() on this process's event loop, and peers
// (node, nc, curl, C tools) run as child processes in the client namespace.
//
// The stack runs in the test process on purpose: the tests read its counters,
// connection table, conntrack size, frames held and heap directly, at the
// moment they assert. The peers are separate processes, so the kernel's TCP
// and the stack never share an event loop; the test awaits their results.
//
// Payloads are AES-128-CTR keystreams of zeros keyed by a small seed: fast to
// generate on both sides at any size (1 GiB included), never repeating, so a
// misplaced segment cannot hash right.
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { privateLab, rootSkipReason } from './lab.js';
import { probeTransports } from '../../src/link/native.js';
import { TapLink } from '../../src/link/tap.js';
import { AfXdpLink } from '../../src/link/afxdp.js';
import { XdpProgram } from '../../src/xdp/program.js';
import { inNetns, run, tryRun } from '../../src/util/run.js';
import type { Link } from '../../src/link/types.js';
import { Stack, runStack, type StackDriver } from '../../src/stack/iface.js';
import { Tcp, type TcpConfig } from '../../src/stack/tcp/tcp.js';
import { Conntrack, type ConntrackOptions } from '../../src/stack/conntrack/index.js';
import type { TcpSocket } from '../../src/stack/tcp/socket.js';
import type { Lab } from '../../src/lab/topo.js';

export type StackKind = 'tap' | 'afxdp';
export const KINDS: readonly StackKind[] = ['tap', 'afxdp'];

/** Why a stack of this kind cannot run here, or null. */
export function stackSkipReason(kind: StackKind): string | null {
  const r = rootSkipReason();
  if (r !== null) return r;
  const t = probeTransports()[kind];
  return t.available ? null : (t.reason ?? `${kind} unavailable`);
}

export interface StackHostOptions {
  /** Short tag for the lab prefix. */
  tag: string;
  tcp?: Partial<TcpConfig>;
  /** Attach a conntrack table with these options; absent: no conntrack. */
  conntrack?: ConntrackOptions;
  /** Frames of link memory. Default 4096. */
  frameCount?: number;
  /** Routes to add on the stack: prefix/len via the client (e.g. spoofed SYN sources). */
  routesViaClient?: { prefix: string; prefixLen: number }[];
}

export class StackHost {
  readonly lab: Lab;
  readonly link: Link;
  readonly stack: Stack;
  readonly tcp: Tcp;
  readonly ct: Conntrack | null;
  readonly prog: XdpProgram | null;
  /** The stack's address, as the client reaches it. */
  readonly addr: string;
  private driver: StackDriver | null;
  private closed = false;

  private constructor(readonly kind: StackKind, lab: Lab, link: Link, stack: Stack, tcp: Tcp, ct: Conntrack | null, prog: XdpProgram | null, addr: string, driver: StackDriver) {
    this.lab = lab; this.link = link; this.stack = stack; this.tcp = tcp; this.ct = ct; this.prog = prog; this.addr = addr; this.driver = driver;
  }

  /** Brings up a private lab and a stack on it. Everything made is removed by close(), also when open() itself fails. */
  static open(kind: StackKind, o: StackHostOptions): StackHost {
    const lab = privateLab(`${o.tag}${kind[0]}`);
    let link: Link | null = null;
    let prog: XdpProgram | null = null;
    try {
      lab.up();
      const ct = o.conntrack ? new Conntrack(o.conntrack) : null;
      let addr: string;
      let stack: Stack;
      if (kind === 'tap') {
        addr = lab.tapAddr;
        link = TapLink.open({ name: lab.tapIface, netns: lab.serverNs, frameCount: o.frameCount ?? 4096 });
        stack = new Stack({ link, addrs: [{ addr, prefixLen: lab.tapPrefixLen }], gateway: lab.tapKernelAddr, conntrack: ct ?? undefined });
      } else {
        addr = lab.afxdpAddr;
        prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, mode: 'auto' });
        prog.steer({ addr });
        link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, queue: 0, xdp: prog, frameCount: o.frameCount ?? 4096 });
        // The client is the way to anything beyond the veth's /24 (spoofed
        // sources in the SYN flood test): it drops what it cannot deliver.
        stack = new Stack({ link, addrs: [{ addr, prefixLen: lab.vethPrefixLen }], gateway: lab.clientAddr, conntrack: ct ?? undefined });
      }
      for (const r of o.routesViaClient ?? []) {
        if (kind === 'afxdp') continue; // the default route already goes via the client
        // TAP: the stack's gateway is the server kernel; it forwards to the client.
        run(lab.server(['ip', 'route', 'replace', `${r.prefix}/${r.prefixLen}`, 'via', lab.clientAddr]));
      }
      const tcp = Tcp.attach(stack, { config: o.tcp });
      const driver = runStack(stack);
      return new StackHost(kind, lab, link, stack, tcp, ct, prog, addr, driver);
    } catch (e) {
      try { link?.close(); } catch { /* already failing */ }
      try { prog?.detach(); } catch { /* already failing */ }
      lab.down();
      throw e;
    }
  }

  /** argv in the client namespace. */
  client(argv: readonly string[]): string[] { return this.lab.client(argv); }

  /** Removes iptables rules the test added in the client namespace. */
  flushClientFirewall(): void {
    if (this.closed) return;
    tryRun(this.lab.client(['iptables', '-F', 'INPUT']));
    tryRun(this.lab.client(['iptables', '-F', 'OUTPUT']));
  }

  /** Stops the stack, closes the link, detaches XDP, removes the lab (namespaces and pins). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try { this.driver?.stop(); this.driver = null; } catch { /* keep tearing down */ }
    try { this.stack.close(); } catch { /* keep tearing down */ }
    try { this.link.close(); } catch { /* keep tearing down */ }
    try { this.prog?.detach(); } catch { /* keep tearing down */ }
    this.lab.down();
  }
}

// ---------------------------------------------------------------------------
// Payloads

const ZERO = Buffer.alloc(64 * 1024);

/** A deterministic byte stream: AES-128-CTR over zeros, key = seed. */
export class KeyStream {
  private readonly c;
  constructor(seed: number) { this.c = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed & 0xff), Buffer.alloc(16)); }
  /** The next n bytes (n <= 64 KiB). */
  next(n: number): Buffer { return this.c.update(n === ZERO.length ? ZERO : ZERO.subarray(0, n)); }
}

/** SHA-256 of the first n bytes of KeyStream(seed). */
export function streamSha(seed: number, n: number): string {
  const k = new KeyStream(seed);
  const h = createHash('sha256');
  for (let left = n; left > 0;) { const m = Math.min(left, ZERO.length); h.update(k.next(m)); left -= m; }
  return h.digest('hex');
}

/** Writes n bytes of KeyStream(seed) to a stream-shaped socket with backpressure, then ends it. */
export function pumpStream(s: TcpSocket | NodeJS.WritableStream, seed: number, n: number): void {
  const k = new KeyStream(seed);
  let left = n;
  const go = (): void => {
    while (left > 0) {
      const m = Math.min(left, ZERO.length);
      left -= m;
      if (!s.write(k.next(m))) { s.once('drain', go); return; }
    }
    s.end();
  };
  go();
}

/** The same helpers as JavaScript source, for node peers in the client namespace. */
export const PEER_LIB = `
const net = require('node:net'); const crypto = require('node:crypto');
const ZERO = Buffer.alloc(65536);
function ks(seed) { const c = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, seed & 255), Buffer.alloc(16)); return (n) => c.update(n === 65536 ? ZERO : ZERO.subarray(0, n)); }
function pump(s, seed, n) { const k = ks(seed); let left = n; const go = () => { while (left > 0) { const m = Math.min(left, 65536); left -= m; if (!s.write(k(m))) { s.once('drain', go); return; } } s.end(); }; go(); }
function out(o) { process.stdout.write(JSON.stringify(o) + '\\n'); }
`;

// ---------------------------------------------------------------------------
// Peers

export interface Peer {
  child: ChildProcess;
  /** Resolves when the peer printed a line 'ready'. */
  ready: Promise<void>;
  /** stdout without the 'ready' line, once the peer exits 0 (rejects otherwise, with stderr). */
  done: Promise<string>;
  kill(): void;
}

/**
 * Runs argv in network namespace ns (nsenter --net, so bpffs stays visible),
 * with an open-files limit of nofile and a hard deadline after which it is
 * killed (and done rejects).
 */
export function spawnIn(ns: string, argv: readonly string[], opts: { nofile?: number; timeoutMs?: number } = {}): Peer {
  const full = inNetns(ns, opts.nofile ? ['prlimit', `--nofile=${opts.nofile}:${opts.nofile}`, '--', ...argv] : argv);
  // Its own process group, so a kill reaches whatever it forked (nginx's worker
  // outlives a killed master, in a namespace the test then deletes).
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const killGroup = (): void => {
    try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
  };
  let out = '';
  let err = '';
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => { readyResolve = res; readyReject = rej; });
  ready.catch(() => { /* observed through done */ });
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (/^ready$/m.test(out)) readyResolve();
  });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); if (err.length > 65536) err = err.slice(-65536); });
  const timer = setTimeout(() => { err += `\n[killed after ${opts.timeoutMs} ms]`; killGroup(); }, opts.timeoutMs ?? 120_000);
  const done = new Promise<string>((resolve, reject) => {
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      const text = out.replace(/^ready\n/m, '').trim();
      if (code === 0) resolve(text);
      else { const e = new Error(`peer ${argv[0]} exited ${code ?? sig}: ${err.trim().slice(-2000)} stdout: ${text.slice(-500)}`); readyReject(e); reject(e); }
    });
  });
  return { child, ready, done, kill: () => { if (child.exitCode === null) killGroup(); } };
}

/** A node -e script in ns; PEER_LIB is prepended. */
export function nodePeer(ns: string, script: string, opts: { nofile?: number; timeoutMs?: number } = {}): Peer {
  return spawnIn(ns, [process.execPath, '-e', PEER_LIB + script], opts);
}

/** Parses the last JSON line a peer printed. */
export function lastJson<T>(text: string): T {
  const lines = text.split('\n').filter((l) => l.startsWith('{'));
  if (lines.length === 0) throw new Error(`peer printed no result: ${text.slice(-500)}`);
  return JSON.parse(lines[lines.length - 1]!) as T;
}

// ---------------------------------------------------------------------------
// Memory

let gcFn: (() => void) | null = null;
/** A full GC (exposed at runtime when node was started without --expose-gc). */
export function fullGc(): void {
  if (gcFn === null) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else { setFlagsFromString('--expose-gc'); gcFn = runInNewContext('gc') as () => void; }
  }
  gcFn();
}

/** heapUsed after full GCs, letting finalizers and pending callbacks run in between. */
export async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    fullGc();
    await new Promise<void>((r) => setImmediate(r));
  }
  fullGc();
  return process.memoryUsage().heapUsed;
}

/** Waits (real time, polled) until pred() holds or timeoutMs passes; returns pred(). */
export async function waitFor(pred: () => boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) return false;
    await new Promise<void>((r) => setTimeout(r, everyMs));
  }
  return true;
}
