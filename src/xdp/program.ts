// XdpProgram: load, configure and unload strata's XDP program on one
// interface (bpf/strata_xdp.c), through the addon's libxdp calls.
//
//   const p = XdpProgram.attach({ iface: 's0', netns: 'strata-server', mode: 'auto' });
//   p.steer({ addr: '10.200.0.3' });            // everything to .3 -> AF_XDP
//   p.steer({ addr: 'fd00::3', proto: 'udp', portLo: 7, portHi: 7 });
//   p.deny({ prefix: '192.0.2.0/24', dstPort: 22 });
//   p.bindXsk(0, link.fd);                      // queue 0 -> that socket
//   p.counters();                               // per reason, summed over CPUs
//   p.detach();                                 // unpins, removes the pin dir
//
// Mode 'auto' tries native (driver) XDP and falls back to generic (skb) mode,
// reporting why. attach() replaces leftovers of a previous run that was
// killed (program still attached, stale pins): a demanding operator expects
// `start` after `kill -9` to just work, as Cilium's agent does on restart.
// Programs are detached on exit, SIGINT and SIGTERM.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BPF_PIN_ROOT, removePins } from '../lab/topo.js';
import { bpfObjectPath, loadNative, type NativeAddon, type XdpQueryResult } from '../link/native.js';
import { InvalidArgumentError, StrataError, SystemError, UnavailableError } from '../util/errors.js';
import { formatAddr, mapped16, parseAddr, parsePrefix, unmapped } from './addr.js';
import { BpfMap } from './maps.js';
import { ownerState, processStart, type OwnerRecord, type OwnerState } from './owner.js';
import {
  ADDR_KEY_SIZE, COUNTER_SIZE, DENY_KEY_SIZE, DENY_PORT_KEY_SIZE, FAMILY_V4, FAMILY_V6, MAP, MAX_QUEUES, META_SIZE, PROG_NAME,
  PROTO_ANY, REASON_NAMES, STEER_KEY_SIZE, STEER_RANGES, STEER_VAL_SIZE, type ReasonName,
} from './shared.js';

export type XdpMode = 'native' | 'generic';
export type XdpAction = 'aborted' | 'drop' | 'pass' | 'tx' | 'redirect';
const XDP_ACTIONS: readonly XdpAction[] = ['aborted', 'drop', 'pass', 'tx', 'redirect'];

export interface XdpAttachOptions {
  iface: string;
  /** Network namespace name (under /run/netns) holding iface; default: the current one. */
  netns?: string;
  /** bpffs directory for the maps; default pinDirFor(iface, netns). */
  pinDir?: string;
  /** 'auto' (default) tries native, then generic. */
  mode?: XdpMode | 'auto';
  /** The XDP object; default bpf/strata_xdp.o. */
  objPath?: string;
  /** Detach on exit/SIGINT/SIGTERM (default true). */
  detachOnExit?: boolean;
  /**
   * Take over the interface even from a live process that attached strata's
   * program there (default false: ERR_STRATA_XDP_BUSY). Leftovers of dead
   * processes and CLI attachments (no owner) are always replaced.
   */
  replace?: boolean;
}

export interface SteerRule {
  addr: string;
  /** Omitted: every protocol to addr. */
  proto?: 'tcp' | 'udp';
  portLo?: number;
  portHi?: number;
}

export interface DenyRule { prefix: string; dstPort?: number }

export interface Recovery {
  /** Ids of strata programs found attached from an earlier run and detached. */
  staleProgramIds: number[];
  /** Whether a stale pin directory was removed. */
  stalePins: boolean;
}

export type Counters = Record<ReasonName, { packets: number; bytes: number }>;

function decodeOwner(v: Uint8Array | null): OwnerRecord {
  if (v === null || v.byteLength < META_SIZE) return { pid: 0, start: 0 };
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  return { pid: dv.getUint32(0, true), start: Number(dv.getBigUint64(8, true)) };
}

/** The owner recorded in a pin directory's meta map (pid 0: none), or null when there is none. */
export function pinnedOwnerRecord(pinDir: string): OwnerRecord | null {
  const path = join(pinDir, MAP.meta);
  if (!existsSync(path)) return null;
  let m: BpfMap | undefined;
  try {
    m = BpfMap.open(path);
    return decodeOwner(m.lookup(new Uint8Array(4)));
  } catch {
    return null;
  } finally {
    m?.close();
  }
}

/** The owner pid recorded in a pin directory's meta map (0: none), or null when there is none. */
export function pinnedOwner(pinDir: string): number | null {
  return pinnedOwnerRecord(pinDir)?.pid ?? null;
}

export function pinDirFor(iface: string, netns?: string | null): string {
  return `${BPF_PIN_ROOT}/${netns ?? 'root'}_${iface}`;
}

const PROTO_NUM = { tcp: 6, udp: 17 } as const;

const live = new Set<XdpProgram>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => { for (const p of [...live]) p.detachQuietly(); });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSig = (): void => {
      for (const p of [...live]) p.detachQuietly();
      // If we were the only listener, behave as if we had not been there:
      // re-raise with the default action so the exit status says "signal".
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, onSig);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSig);
  }
}

export class XdpProgram {
  readonly iface: string;
  readonly netns: string | undefined;
  readonly pinDir: string;
  readonly id: number;
  readonly ifindex: number;
  readonly mode: XdpMode;
  /** Why native mode was not used, when mode is 'generic' after 'auto'. */
  readonly fallbackReason: string | undefined;
  readonly recovered: Recovery;
  /** libbpf/libxdp messages from loading (e.g. why the multi-program dispatcher was not used). */
  readonly loadLog: string;
  private readonly n: NativeAddon;
  private readonly maps: Record<keyof typeof MAP, BpfMap>;
  private attached = true;

  private constructor(n: NativeAddon, o: {
    iface: string; netns?: string; pinDir: string; id: number; ifindex: number; mode: XdpMode;
    fallbackReason?: string; recovered: Recovery; loadLog?: string;
  }) {
    this.n = n;
    this.iface = o.iface;
    this.netns = o.netns;
    this.pinDir = o.pinDir;
    this.id = o.id;
    this.ifindex = o.ifindex;
    this.mode = o.mode;
    this.fallbackReason = o.fallbackReason;
    this.recovered = o.recovered;
    this.loadLog = o.loadLog ?? '';
    const maps = {} as Record<keyof typeof MAP, BpfMap>;
    try {
      for (const k of Object.keys(MAP) as (keyof typeof MAP)[]) maps[k] = BpfMap.open(join(o.pinDir, MAP[k]));
    } catch (e) {
      for (const m of Object.values(maps)) m.close();
      throw e;
    }
    this.maps = maps;
  }

  /** Loads and attaches the program; see the module comment. */
  static attach(o: XdpAttachOptions): XdpProgram {
    const n = loadNative('xdp');
    const objPath = o.objPath ?? bpfObjectPath;
    if (!existsSync(objPath)) throw new UnavailableError('xdp', `XDP object not built (${objPath} missing; run \`npm run build\`)`);
    const pinDir = o.pinDir ?? pinDirFor(o.iface, o.netns);
    const want = o.mode ?? 'auto';
    if (want !== 'auto' && want !== 'native' && want !== 'generic') throw new InvalidArgumentError(`mode must be native, generic or auto, not '${want}'`);
    n.ensureBpffs('/sys/fs/bpf');

    // Recover from a previous run killed before it could clean up, but never
    // pull the program from under a live owner unless asked to.
    const recovered: Recovery = { staleProgramIds: [], stalePins: false };
    const q = n.xdpQuery({ ifname: o.iface, netns: o.netns });
    const owner = pinnedOwnerRecord(pinDir);
    if (!o.replace && owner && owner.pid !== process.pid && ownerState(owner) === 'alive' && q.programs.some((p) => p.name === PROG_NAME)) {
      throw new StrataError('ERR_STRATA_XDP_BUSY', `strata's XDP program on ${o.iface}${o.netns ? ` (netns ${o.netns})` : ''} belongs to live process ${owner.pid}; stop it or pass replace`);
    }
    for (const p of q.programs) {
      if (p.name === PROG_NAME && n.xdpDetach({ ifname: o.iface, netns: o.netns, id: p.id })) recovered.staleProgramIds.push(p.id);
    }
    if (existsSync(pinDir)) { removePins(pinDir); recovered.stalePins = true; }
    mkdirSync(pinDir, { recursive: true });

    let res;
    let fallbackReason: string | undefined;
    try {
      if (want === 'generic') res = n.xdpAttach({ objPath, ifname: o.iface, netns: o.netns, mode: 'skb', pinRoot: pinDir });
      else {
        try {
          res = n.xdpAttach({ objPath, ifname: o.iface, netns: o.netns, mode: 'native', pinRoot: pinDir });
        } catch (e) {
          if (want === 'native' || !(e instanceof SystemError)) throw e;
          fallbackReason = e.message;
          res = n.xdpAttach({ objPath, ifname: o.iface, netns: o.netns, mode: 'skb', pinRoot: pinDir });
        }
      }
    } catch (e) {
      removePins(pinDir);
      throw e;
    }
    let prog: XdpProgram;
    try {
      prog = new XdpProgram(n, {
        iface: o.iface, netns: o.netns, pinDir, id: res.id, ifindex: res.ifindex,
        mode: res.mode === 'native' ? 'native' : 'generic', fallbackReason, recovered, loadLog: res.log,
      });
    } catch (e) {
      n.xdpDetach({ ifname: o.iface, netns: o.netns, id: res.id });
      removePins(pinDir);
      throw e;
    }
    const detachOnExit = o.detachOnExit ?? true;
    try {
      prog.setOwner(detachOnExit ? process.pid : 0);
    } catch (e) {
      prog.detach();
      throw e;
    }
    if (detachOnExit) {
      live.add(prog);
      installExitHandlers();
    }
    return prog;
  }

  /**
   * Takes control of a program attached and pinned earlier (e.g. by
   * `strata xdp attach`), without detaching it on exit.
   */
  static open(o: { iface: string; netns?: string; pinDir?: string }): XdpProgram {
    const n = loadNative('xdp');
    const pinDir = o.pinDir ?? pinDirFor(o.iface, o.netns);
    const st = XdpProgram.query(o);
    const p = st.programs.find((x) => x.name === PROG_NAME);
    if (!p) throw new StrataError('ERR_STRATA_XDP_NOT_ATTACHED', `no strata XDP program on ${o.iface}${o.netns ? ` (netns ${o.netns})` : ''}`);
    if (!existsSync(join(pinDir, MAP.xsks))) throw new StrataError('ERR_STRATA_XDP_NOT_ATTACHED', `strata XDP program on ${o.iface} has no pinned maps in ${pinDir}`);
    return new XdpProgram(n, {
      iface: o.iface, netns: o.netns, pinDir, id: p.id, ifindex: st.ifindex,
      mode: st.mode === 'native' ? 'native' : 'generic', recovered: { staleProgramIds: [], stalePins: false },
    });
  }

  /** What is attached to iface now (any XDP program, via libxdp). */
  static query(o: { iface: string; netns?: string }): XdpQueryResult {
    return loadNative('xdp').xdpQuery({ ifname: o.iface, netns: o.netns });
  }

  /** Detaches the strata program from iface and removes its pins, whoever attached it. Returns whether anything was removed. */
  static detachIface(o: { iface: string; netns?: string; pinDir?: string }): boolean {
    const n = loadNative('xdp');
    const pinDir = o.pinDir ?? pinDirFor(o.iface, o.netns);
    let any = false;
    if (n.ifindex(o.iface, o.netns) !== 0) {
      for (const p of n.xdpQuery({ ifname: o.iface, netns: o.netns }).programs) {
        if (p.name === PROG_NAME && n.xdpDetach({ ifname: o.iface, netns: o.netns, id: p.id })) any = true;
      }
    }
    if (existsSync(pinDir)) { removePins(pinDir); any = true; }
    return any;
  }

  get isAttached(): boolean { return this.attached; }

  private live(): void {
    if (!this.attached) throw new StrataError('ERR_STRATA_XDP_DETACHED', `XDP program on ${this.iface} is detached`);
  }

  // --- steering ----------------------------------------------------------

  private static steerKey(family: number, proto: number, addr: Uint8Array): Uint8Array {
    const k = new Uint8Array(STEER_KEY_SIZE);
    k[0] = family; k[1] = proto;
    k.set(addr, 4);
    return k;
  }

  private static addrKey(family: number, addr: Uint8Array): Uint8Array {
    const k = new Uint8Array(ADDR_KEY_SIZE);
    k[0] = family;
    k.set(addr, 4);
    return k;
  }

  private static normRule(r: SteerRule): { fam: number; addr: Uint8Array; proto: number; lo: number; hi: number } {
    const a = parseAddr(r.addr);
    const fam = a.family === 4 ? FAMILY_V4 : FAMILY_V6;
    if (r.proto === undefined) {
      if (r.portLo !== undefined || r.portHi !== undefined) throw new InvalidArgumentError('steer: ports need proto tcp or udp');
      return { fam, addr: a.bytes, proto: PROTO_ANY, lo: 0, hi: 0 };
    }
    if (r.proto !== 'tcp' && r.proto !== 'udp') throw new InvalidArgumentError(`steer: proto must be tcp or udp, not '${String(r.proto)}'`);
    const lo = r.portLo ?? 0, hi = r.portHi ?? (r.portLo ?? 65535);
    if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi > 65535 || lo > hi) throw new InvalidArgumentError(`steer: bad port range ${lo}-${hi}`);
    return { fam, addr: a.bytes, proto: PROTO_NUM[r.proto], lo, hi };
  }

  /** Sends matching traffic to the AF_XDP socket of the receiving queue. Idempotent. */
  steer(r: SteerRule): void {
    this.live();
    const { fam, addr, proto, lo, hi } = XdpProgram.normRule(r);
    const key = XdpProgram.steerKey(fam, proto, addr);
    const val = this.maps.steerRules.lookup(key) ?? new Uint8Array(STEER_VAL_SIZE);
    const dv = new DataView(val.buffer, val.byteOffset, val.byteLength);
    if (proto !== PROTO_ANY) {
      const nr = dv.getUint32(0, true);
      let have = false;
      for (let i = 0; i < nr; i++) if (dv.getUint16(4 + 4 * i, true) === lo && dv.getUint16(6 + 4 * i, true) === hi) have = true;
      if (!have) {
        if (nr >= STEER_RANGES) throw new InvalidArgumentError(`steer: at most ${STEER_RANGES} port ranges per (address, protocol)`);
        dv.setUint16(4 + 4 * nr, lo, true);
        dv.setUint16(6 + 4 * nr, hi, true);
        dv.setUint32(0, nr + 1, true);
      }
    }
    // The address first, so ARP/NDP for it is answered by the time traffic arrives.
    const one = new Uint8Array(4); one[0] = 1;
    this.maps.steerAddrs.update(XdpProgram.addrKey(fam, addr), one);
    this.maps.steerRules.update(key, val);
  }

  /** Removes a rule added by steer() (the same addr/proto/ports). Returns whether it existed. */
  unsteer(r: SteerRule): boolean {
    this.live();
    const { fam, addr, proto, lo, hi } = XdpProgram.normRule(r);
    const key = XdpProgram.steerKey(fam, proto, addr);
    const val = this.maps.steerRules.lookup(key);
    if (!val) return false;
    let existed = true;
    if (proto === PROTO_ANY) this.maps.steerRules.delete(key);
    else {
      const dv = new DataView(val.buffer, val.byteOffset, val.byteLength);
      const nr = dv.getUint32(0, true);
      const kept: [number, number][] = [];
      for (let i = 0; i < nr; i++) {
        const l = dv.getUint16(4 + 4 * i, true), h = dv.getUint16(6 + 4 * i, true);
        if (l !== lo || h !== hi) kept.push([l, h]);
      }
      existed = kept.length !== nr;
      if (kept.length === 0) this.maps.steerRules.delete(key);
      else {
        const nv = new Uint8Array(STEER_VAL_SIZE);
        const nd = new DataView(nv.buffer);
        nd.setUint32(0, kept.length, true);
        kept.forEach(([l, h], i) => { nd.setUint16(4 + 4 * i, l, true); nd.setUint16(6 + 4 * i, h, true); });
        this.maps.steerRules.update(key, nv);
      }
    }
    // Drop the address (ARP/NDP steering) once no rule uses it.
    const stillUsed = [PROTO_ANY, 6, 17].some((p) => this.maps.steerRules.lookup(XdpProgram.steerKey(fam, p, addr)) !== null);
    if (!stillUsed) this.maps.steerAddrs.delete(XdpProgram.addrKey(fam, addr));
    return existed;
  }

  /** Every steering rule, one per port range. */
  steering(): SteerRule[] {
    this.live();
    const out: SteerRule[] = [];
    for (const k of this.maps.steerRules.keys()) {
      const v = this.maps.steerRules.lookup(k);
      if (!v) continue;
      const fam = k[0]!, proto = k[1]!;
      const addr = formatAddr(fam, k.subarray(4, fam === FAMILY_V4 ? 8 : 20));
      if (proto === PROTO_ANY) { out.push({ addr }); continue; }
      const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
      const name = proto === 6 ? 'tcp' : 'udp';
      for (let i = 0; i < dv.getUint32(0, true); i++) {
        out.push({ addr, proto: name, portLo: dv.getUint16(4 + 4 * i, true), portHi: dv.getUint16(6 + 4 * i, true) });
      }
    }
    return out;
  }

  // --- deny ----------------------------------------------------------------

  private static denyKeys(r: DenyRule): { key: Uint8Array; map: 'denySrc' | 'denySrcPort' } {
    const p = parsePrefix(r.prefix);
    const { addr, bits } = mapped16(p);
    if (r.dstPort === undefined) {
      const key = new Uint8Array(DENY_KEY_SIZE);
      new DataView(key.buffer).setUint32(0, bits, true);
      key.set(addr, 4);
      return { key, map: 'denySrc' };
    }
    if (!Number.isInteger(r.dstPort) || r.dstPort < 0 || r.dstPort > 65535) throw new InvalidArgumentError(`deny: bad port ${r.dstPort}`);
    const key = new Uint8Array(DENY_PORT_KEY_SIZE);
    const dv = new DataView(key.buffer);
    dv.setUint32(0, 16 + bits, true);
    dv.setUint16(4, r.dstPort, false);  // network order, as in the packet
    key.set(addr, 6);
    return { key, map: 'denySrcPort' };
  }

  /** Drops traffic from a source prefix (optionally only to one destination port) at XDP. */
  deny(r: DenyRule): void {
    this.live();
    const { key, map } = XdpProgram.denyKeys(r);
    const one = new Uint8Array(4); one[0] = 1;
    this.maps[map].update(key, one);
  }

  /** Removes a deny rule. Returns whether it existed. */
  allow(r: DenyRule): boolean {
    this.live();
    const { key, map } = XdpProgram.denyKeys(r);
    return this.maps[map].delete(key);
  }

  denials(): DenyRule[] {
    this.live();
    const out: DenyRule[] = [];
    for (const k of this.maps.denySrc.keys()) {
      out.push({ prefix: unmapped(k.subarray(4, 20), new DataView(k.buffer).getUint32(0, true)) });
    }
    for (const k of this.maps.denySrcPort.keys()) {
      const dv = new DataView(k.buffer);
      out.push({ prefix: unmapped(k.subarray(6, 22), dv.getUint32(0, true) - 16), dstPort: dv.getUint16(4, false) });
    }
    return out;
  }

  // --- sockets ---------------------------------------------------------------

  /** Puts an AF_XDP socket fd in the XSKMAP slot of queue. */
  bindXsk(queue: number, fd: number): void {
    this.live();
    if (!Number.isInteger(queue) || queue < 0 || queue >= MAX_QUEUES) throw new InvalidArgumentError(`queue must be in 0..${MAX_QUEUES - 1}`);
    const k = new Uint8Array(4); new DataView(k.buffer).setUint32(0, queue, true);
    const v = new Uint8Array(4); new DataView(v.buffer).setUint32(0, fd, true);
    this.maps.xsks.update(k, v);
    // Flag the queue as served: if the socket dies without unbindXsk (its
    // owner was killed), the kernel empties the slot and the program counts
    // the fallback to the kernel as socket_gone rather than no_socket.
    const one = new Uint8Array(4); one[0] = 1;
    this.maps.xskBound.update(k, one);
  }

  unbindXsk(queue: number): boolean {
    this.live();
    const k = new Uint8Array(4); new DataView(k.buffer).setUint32(0, queue, true);
    this.maps.xskBound.update(k, new Uint8Array(4));
    return this.maps.xsks.delete(k);
  }

  /** Verdict counters by reason, summed over CPUs. */
  counters(): Counters {
    this.live();
    const out = {} as Counters;
    const cpus = this.maps.counters.cpus();
    REASON_NAMES.forEach((name, i) => {
      const k = new Uint8Array(4); new DataView(k.buffer).setUint32(0, i, true);
      const v = this.maps.counters.lookup(k);
      let packets = 0, bytes = 0;
      if (v) {
        const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
        for (let c = 0; c < cpus; c++) {
          packets += Number(dv.getBigUint64(c * COUNTER_SIZE, true));
          bytes += Number(dv.getBigUint64(c * COUNTER_SIZE + 8, true));
        }
      }
      out[name] = { packets, bytes };
    });
    return out;
  }

  /**
   * Runs the attached program once on a frame (BPF_PROG_TEST_RUN) and returns
   * its verdict; counters count it like a received frame. For diagnostics
   * and tests: exact frames, no wire.
   */
  testRun(frame: Uint8Array): XdpAction {
    this.live();
    const r = this.n.progTestRun(this.id, frame);
    return XDP_ACTIONS[r.retval] ?? 'aborted';
  }

  /** Records pid (with its start time, to survive pid reuse) as the owner; 0: none. */
  private setOwner(pid: number): void {
    const v = new Uint8Array(META_SIZE);
    const dv = new DataView(v.buffer);
    dv.setUint32(0, pid, true);
    dv.setBigUint64(8, BigInt(pid === 0 ? 0 : processStart(pid) ?? 0), true);
    this.maps.meta.update(new Uint8Array(4), v);
  }

  /** The pid that detaches this program on exit; 0 when none (e.g. `strata xdp attach`). */
  owner(): number {
    return this.ownerRecord().pid;
  }

  /** The recorded owner and whether it still runs (state 'none' when pid is 0). */
  ownerRecord(): OwnerRecord & { state: OwnerState } {
    this.live();
    const o = decodeOwner(this.maps.meta.lookup(new Uint8Array(4)));
    return { ...o, state: ownerState(o) };
  }

  /**
   * Detaches the program, closes the maps and removes the pin directory.
   * Idempotent. If another process has replaced this program meanwhile, its
   * program and pins are left alone.
   */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    live.delete(this);
    const ourMetaId = this.maps.meta.info.id;
    for (const m of Object.values(this.maps)) m.close();
    let pinsOurs = false;
    try {
      const pinned = BpfMap.open(join(this.pinDir, MAP.meta));
      pinsOurs = pinned.info.id === ourMetaId;
      pinned.close();
    } catch { /* no pins left */ }
    try {
      this.n.xdpDetach({ ifname: this.iface, netns: this.netns, id: this.id });
    } finally {
      if (pinsOurs) removePins(this.pinDir);
    }
  }

  /** detach() for exit paths: never throws (the namespace may already be gone). */
  detachQuietly(): void {
    try { this.detach(); } catch { /* best effort on the way out */ }
  }
}

export { REASON_NAMES };
export type { ReasonName };
