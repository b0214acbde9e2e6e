// Seeded fuzz of every JS-facing function of the native addon: constructors
// and methods of Xsk and Tap (on live, closed and wrong `this` objects), XDP
// attach/query/detach, map and test-run operations, with random arguments:
// wrong types, huge, negative, fractional and non-finite numbers, detached,
// undersized and shared buffers, missing arguments, objects whose getters
// throw. It must end without a crash; thrown errors are counted by class.
//   nsenter --net=/run/netns/NS node --import tsx addon-fuzz-child.ts JSON
// (in a private namespace: every device name it can reach is the test's own).
import { randomBytes } from 'node:crypto';
import { bpfObjectPath, loadNative, type NativeTap, type NativeXsk } from '../../src/link/native.js';

const a = JSON.parse(process.argv[2]!) as { ns: string; veth: string; tap: string; pinDir: string; seed: number; calls: number };
const n = loadNative() as ReturnType<typeof loadNative> & Record<string, unknown>;

// mulberry32: small, seedable, good enough to pick cases.
let state = a.seed >>> 0;
function rnd(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (k: number): number => Math.floor(rnd() * k);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;

const NUMBERS = [0, 1, 2, 7, 8, 63, 64, 2048, 4096, -1, -0, 0.5, 1.5, -(2 ** 31) - 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32,
  2 ** 32 + 1, 2 ** 32 + 64, 2 ** 53, -(2 ** 53), 1e308, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity];
const STRINGS = ['', 'x', 'lo', a.veth, a.tap, 'nosuch0', 'y'.repeat(300), 'a\0b', a.ns, 'no-such-netns-fz', a.pinDir, `${a.pinDir}/xsks_map`, `${a.pinDir}/nosuch`];
const KEYS: Record<string, readonly unknown[]> = {
  ifname: [a.veth, 'lo', 'nosuch0', '', 'z'.repeat(20), 5], netns: [undefined, '', a.ns, 'no-such-netns-fz'],
  queue: [0, 1, 2 ** 32, -1, 0.5], frameSize: [2048, 4096, 1000, 2 ** 32 + 2048], frameCount: [64, 128, 63, 2 ** 20 + 1, 2 ** 32 + 64, NaN],
  rxSize: [64, 2048, 1000, 2 ** 21, 2 ** 32 + 64], txSize: [64, 2048, 0], fillSize: [64, 2048, 3], compSize: [64, 2048, -64],
  bind: ['copy', 'auto', 'zerocopy', 'x'], needWakeup: [true, false, 1], busyPoll: [false, true], busyPollUsec: [0, 20, 2 ** 31], busyPollBudget: [0, 64, -1],
  name: [a.tap, `${a.tap}b`, '', 'w'.repeat(20)], create: [true, false], persist: [false],
  objPath: [bpfObjectPath, '/nonexistent.o', ''], section: [undefined, 'xdp', 'nosuch'], mode: ['skb', 'native', 'fast'], pinRoot: [a.pinDir, ''],
  id: [0, 1, 2 ** 32, -1, 0.5, NaN],
};
const live: { xsk: NativeXsk[]; tap: NativeTap[] } = { xsk: [], tap: [] };

function u32(len: number): Uint32Array {
  const d = new Uint32Array(len);
  for (let i = 0; i < len; i++) d[i] = rnd() < 0.5 ? int(64) * 2048 : pick(NUMBERS) >>> 0;
  return d;
}
function detached(): Uint32Array {
  const d = new Uint32Array(16);
  structuredClone(d.buffer, { transfer: [d.buffer] });
  return d;
}
function options(): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, vs] of Object.entries(KEYS)) if (rnd() < 0.6) o[k] = rnd() < 0.85 ? pick(vs) : value(1);
  return o;
}
function value(depth = 0): unknown {
  switch (int(22)) {
    case 0: return undefined;
    case 1: return null;
    case 2: return rnd() < 0.5;
    case 3: case 4: case 5: return pick(NUMBERS);
    case 6: return pick(STRINGS);
    case 7: case 8: return u32(pick([0, 1, 2, 7, 8, 16, 128]));
    case 9: return detached();
    case 10: return new Uint32Array(new SharedArrayBuffer(64));
    case 11: return new Uint8Array(randomBytes(pick([0, 1, 4, 8, 14, 64, 5000])));
    case 12: return new Uint16Array(8);
    case 13: return new ArrayBuffer(16);
    case 14: return depth > 1 ? {} : options();
    case 15: return new Proxy({}, { get() { throw new Error('getter'); } });
    case 16: return [1, 2, 3];
    case 17: return () => 0;
    case 18: return 1n;
    case 19: return Symbol('s');
    case 20: return pick([...live.xsk, ...live.tap, {}]);
    default: return new Float64Array(4);
  }
}
function args(): unknown[] {
  const k = int(5);
  const out: unknown[] = [];
  for (let i = 0; i < k; i++) out.push(value());
  return out;
}

let calls = 0;
const thrown = new Map<string, number>();
function call(label: string, f: () => unknown): void {
  calls++;
  try { f(); } catch (e) {
    const key = e instanceof Error ? `${e.constructor.name}:${(e as { code?: string }).code ?? 'no code'}` : `non-Error:${typeof e}`;
    thrown.set(key, (thrown.get(key) ?? 0) + 1);
    if (!(e instanceof Error) || typeof (e as { code?: unknown }).code !== 'string') {
      const m = `${label}: ${e instanceof Error ? e.message : String(e)}`;
      thrown.set(`uncoded ${m}`, (thrown.get(`uncoded ${m}`) ?? 0) + 1);
    }
  }
}

function openXsk(): void {
  call('Xsk()', () => { live.xsk.push(new n.Xsk({ ifname: a.veth, queue: 0, frameCount: 64, bind: 'copy', rxSize: 64, txSize: 64, fillSize: 64, compSize: 64 })); });
}
function openTap(): void {
  call('Tap()', () => { live.tap.push(new n.Tap({ name: a.tap, create: true }, 64 * 2048)); });
}
openXsk();
openTap();
const xskProto = n.Xsk.prototype as unknown as Record<string, (...x: unknown[]) => unknown>;
const tapProto = n.Tap.prototype as unknown as Record<string, (...x: unknown[]) => unknown>;
const XSK_METHODS = ['rx', 'tx', 'alloc', 'free', 'kick', 'startPoll', 'stopPoll', 'stats', 'info', 'close'];
const TAP_METHODS = ['rx', 'tx', 'startPoll', 'stopPoll', 'info', 'stats', 'close'];
const FUNCS = ['ifInfo', 'ifindex', 'xdpAttach', 'xdpQuery', 'xdpDetach', 'mapOpen', 'mapClose', 'mapInfo', 'mapLookup', 'mapUpdate',
  'mapDelete', 'mapNextKey', 'possibleCpus'];
let attachedId = 0;
const xskFresh = 8; // re-opens of a socket at most: each close costs the kernel a queue release
let xskOpens = 1;

function wrongThis(): unknown {
  return pick([undefined, null, {}, 5, Object.create(n.Xsk.prototype), Object.create(n.Tap.prototype), ...live.tap, ...live.xsk]);
}
function methodCall(proto: Record<string, (...x: unknown[]) => unknown>, names: string[], self: () => unknown): void {
  const m = pick(names);
  // close is rare: the socket's replacement waits for the kernel to let go of the queue.
  if (m === 'close' && rnd() < 0.9) return;
  const fn = proto[m]!;
  const argv = args();
  if (m === 'startPoll' && rnd() < 0.5) argv[0] = () => undefined;
  const t = rnd() < 0.15 ? wrongThis() : self();
  call(m, () => fn.apply(t, argv));
}

for (let i = 0; calls < a.calls; i++) {
  const r = rnd();
  if (live.xsk.length === 0 && xskOpens < xskFresh) { xskOpens++; openXsk(); }
  if (live.tap.length === 0) openTap();
  if (r < 0.3) methodCall(xskProto, XSK_METHODS, () => pick(live.xsk.length ? live.xsk : [{}]));
  else if (r < 0.55) methodCall(tapProto, TAP_METHODS, () => pick(live.tap.length ? live.tap : [{}]));
  else if (r < 0.6) {
    // Constructors: random options (some valid), called with and without new.
    const C = (rnd() < 0.5 ? n.Xsk : n.Tap) as unknown as new (...x: unknown[]) => NativeXsk & NativeTap;
    const argv = rnd() < 0.5 ? [options(), pick([64 * 2048, 0, -1, 2 ** 31, 2 ** 53, NaN, 1.5, '4096'])] : args();
    if (C === (n.Xsk as unknown) && xskOpens >= xskFresh) continue;
    call(`new ${C.name}`, () => {
      const o = rnd() < 0.95 ? new C(...argv) : (C as unknown as (...x: unknown[]) => unknown)(...argv);
      const inst = o as NativeXsk & NativeTap;
      inst.close();
      if (C === (n.Xsk as unknown)) xskOpens++;
    });
  } else if (r < 0.63) {
    call('ensureBpffs', () => (n.ensureBpffs as (...x: unknown[]) => unknown)(pick([undefined, 5, null, {}, []])));
  } else if (r < 0.66) {
    // progTestRun on our own program only: never on another process's.
    call('progTestRun', () => n.progTestRun(pick([attachedId, 0, 2 ** 32 - 1, 2 ** 32 + attachedId, -1, NaN, 0.5]) as number,
      value() as Uint8Array));
  } else {
    const f = pick(FUNCS);
    const argv = rnd() < 0.6 ? [rnd() < 0.5 ? options() : value(), value(), value(), value()] : args();
    if (f.startsWith('map') && f !== 'mapOpen' && rnd() < 0.5) argv[0] = int(32);
    call(f, () => {
      const res = (n[f] as (...x: unknown[]) => unknown)(...argv);
      if (f === 'xdpAttach') attachedId = (res as { id: number }).id;
    });
  }
  // Sometimes make a live descriptor call with a valid shape, so the fast
  // paths (not just the checks) run with random contents too.
  if (rnd() < 0.1 && live.xsk.length) {
    const x = pick(live.xsk);
    call('xsk burst', () => {
      const d = u32(16);
      const got = x.alloc(d, 0, 8);
      x.tx(d, got);
      x.rx(d, 0, 8);
      x.free(d, 8);
    });
  }
  live.xsk = live.xsk.filter((x) => { try { x.info(); return x.info().fd >= 0; } catch { return false; } });
  live.tap = live.tap.filter((t) => { try { return t.info().fd >= 0; } catch { return false; } });
}

for (const x of live.xsk) x.close();
for (const t of live.tap) t.close();
try {
  const q = n.xdpQuery({ ifname: a.veth });
  for (const p of q.programs) n.xdpDetach({ ifname: a.veth, id: p.id });
  const ql = n.xdpQuery({ ifname: 'lo' });
  for (const p of ql.programs) n.xdpDetach({ ifname: 'lo', id: p.id });
} catch { /* the namespace goes away with the test anyway */ }
process.stdout.write(`${JSON.stringify({ calls, seed: a.seed, thrown: Object.fromEntries(thrown) })}\n`);
process.stdout.write(`addon fuzz: ${calls} calls, seed 0x${a.seed.toString(16)}\n`);
process.exit(0);
