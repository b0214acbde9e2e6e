// The addon against hostile JavaScript: arguments that wrap 32-bit bounds
// checks, a frame pool transferred away under the TAP, and fd leaks in XDP
// queries. Each crashing case runs in a child (test/helpers/addon-child.ts)
// so a crash is an exit signal the test can assert, not a dead runner.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { bpfObjectPath, loadNative, probeTransports, repoRoot } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { Burst } from '../src/link/types.js';
import { run, tryRun } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const probe = probeTransports();
const skip = rootSkipReason() ?? (probe.afxdp.available && probe.tap.available ? null : `${probe.afxdp.reason ?? ''} ${probe.tap.reason ?? ''}`.trim());

interface ChildResult { status: number | null; signal: string | null; out: { result: string; name?: string; code?: string; isRange?: boolean; n?: number; past?: number; frames?: number; arp?: number; memBytes?: number } | null; stderr: string }

describe.skipIf(skip !== null)(`addon hardening${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let n = 0;
  beforeAll(() => { lab = privateLab('ah'); lab.up(); });
  afterAll(() => { lab?.down(); });

  function child(kind: string): ChildResult {
    const args = {
      netns: lab.serverNs, iface: lab.serverIface, tap: `ahtap${n++}`, clientNs: lab.clientNs, clientAddr: lab.clientAddr,
      afxdpAddr: lab.afxdpAddr, pinDir: `${lab.pinDir}-child${n}`, tapPeer: `10.231.${n}.1`,
    };
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(repoRoot, 'test/helpers/addon-child.ts'), kind, JSON.stringify(args)],
      { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    let out: ChildResult['out'] = null;
    try { out = JSON.parse(line) as ChildResult['out']; } catch { /* crashed before saying anything */ }
    tryRun(['ip', '-n', lab.serverNs, 'link', 'del', args.tap]);
    return { status: r.status, signal: r.signal, out, stderr: r.stderr };
  }

  /** The clean refusal: the child lived, and the addon threw a coded RangeError. */
  function expectRangeError(r: ChildResult): void {
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    expect(r.out).toEqual({ result: 'threw', name: 'ArgumentRangeError', code: 'ERR_STRATA_ARG_RANGE', isRange: true });
  }

  it('rx/alloc bounds wrap: Xsk.alloc(desc, 2**31, 2**31) is a RangeError, not frames written past the array', () => {
    expectRangeError(child('xsk-alloc'));
  });

  it('rx/alloc bounds wrap: Xsk.alloc(desc, 2**32 - 1, 1) is a RangeError, not a segfault', () => {
    expectRangeError(child('xsk-alloc-far'));
  });

  it('rx/alloc bounds wrap: Xsk.rx(desc, 2**31, 2**31) with frames in the RX ring is a RangeError, not received pairs written past the array', () => {
    expectRangeError(child('xsk-rx'));
  });

  it('rx/alloc bounds wrap: Tap.rx(desc, 2**32 - 1, 1) is a RangeError, not a segfault', () => {
    expectRangeError(child('tap-rx'));
  });

  it('TAP detached buffer use-after-free: after its frame pool is transferred and collected, the TAP still receives into live memory', () => {
    const r = child('tap-transfer');
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    // The kernel's ARP requests for the neighbour arrived, readable in `mem`:
    // the transfer copied the pool instead of taking it from the link.
    expect(r.out!.result).toBe('returned');
    expect(r.out!.arp).toBeGreaterThan(0);
    expect(r.out!.memBytes).toBe(16 * 2048);
  });

  it('TAP detached buffer use-after-free: the addon owns the pool, so a transfer of its raw buffer leaves the addon reading into live memory', () => {
    const r = child('tap-transfer-native');
    expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
    expect(r.out!.result).toBe('returned');
    expect(r.out!.n).toBeGreaterThan(0);
    // Node 20 copies an external buffer on transfer instead of detaching it;
    // were it detached, only the JS view would be gone.
    expect([0, 1 << 20]).toContain(r.out!.memBytes);
  });

  it('the UMEM is the addon\'s memory too: a transfer of AfXdpLink.mem leaves the link its frames', () => {
    const l = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, frameCount: 64, mode: 'copy' });
    try {
      const size = l.mem.byteLength;
      const copy = structuredClone(l.mem.buffer, { transfer: [l.mem.buffer as ArrayBuffer] });
      expect(copy.byteLength).toBe(size);
      expect(l.mem.byteLength).toBe(size);
      const b = new Burst(8);
      expect(l.alloc(b, 8)).toBe(8);
      l.mem[b.off(7)] = 0xab;
      expect(l.mem[b.off(7)]).toBe(0xab);
      l.free(b);
      expect(l.xskStats().badDescs).toBe(0);
    } finally {
      l.close();
    }
  });

  it('fd leaks: 1000 xdpQuery and 1000 xdpDetach calls leave /proc/self/fd as it was', () => {
    const na = loadNative();
    const ns = lab.serverNs;
    run(['ip', '-n', ns, 'link', 'add', 'ahfd0', 'type', 'veth', 'peer', 'name', 'ahfd1']);
    run(['ip', '-n', ns, 'link', 'set', 'ahfd0', 'up']);
    run(['ip', '-n', ns, 'link', 'set', 'ahfd1', 'up']);
    const pin = `${lab.pinDir}-fd`;
    mkdirSync(pin, { recursive: true });
    const fds = (): number => readdirSync('/proc/self/fd').length;
    try {
      // Nothing attached: the lookup path runs and finds nothing.
      const idle = fds();
      for (let i = 0; i < 1000; i++) {
        expect(na.xdpQuery({ ifname: 'ahfd0', netns: ns }).mode).toBe('none');
        expect(na.xdpDetach({ ifname: 'ahfd0', netns: ns, id: 1 })).toBe(false);
      }
      expect(fds()).toBe(idle);
      const a = na.xdpAttach({ objPath: bpfObjectPath, ifname: 'ahfd0', netns: ns, mode: 'skb', pinRoot: pin });
      const before = fds();
      for (let i = 0; i < 1000; i++) {
        const q = na.xdpQuery({ ifname: 'ahfd0', netns: ns });
        expect(q.programs.map((p) => p.id)).toEqual([a.id]);
        // Another id: the attached program is looked up, compared, left alone.
        expect(na.xdpDetach({ ifname: 'ahfd0', netns: ns, id: a.id + 1 })).toBe(false);
      }
      expect(fds()).toBe(before);
      // A second attach over it is refused by libxdp, without a leaked fd.
      expect(() => na.xdpAttach({ objPath: bpfObjectPath, ifname: 'ahfd0', netns: ns, mode: 'skb', pinRoot: pin })).toThrow();
      expect(fds()).toBe(before);
      expect(na.xdpDetach({ ifname: 'ahfd0', netns: ns, id: a.id })).toBe(true);
      expect(na.xdpQuery({ ifname: 'ahfd0', netns: ns }).mode).toBe('none');
      expect(fds()).toBe(before);
    } finally {
      tryRun(['ip', '-n', ns, 'link', 'del', 'ahfd0']);
      rmSync(pin, { recursive: true, force: true });
    }
  });
});
