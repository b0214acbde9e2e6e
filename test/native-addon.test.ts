// The addon's contract with JavaScript: errors are strata's classes with
// stable codes (no C++ exceptions, no stack-trace soup), arguments are
// checked, and transports report whether they can run here and why not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { loadNative, probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { TapLink } from '../src/link/tap.js';
import { Burst } from '../src/link/types.js';
import { BpfMap } from '../src/xdp/maps.js';
import { ArgumentRangeError, ArgumentTypeError, InvalidArgumentError, StrataError, SystemError, UnavailableError } from '../src/util/errors.js';
import { isRoot, run, tryRun } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const probe = probeTransports();

describe('transport probe', () => {
  it('says for each transport whether it is available, and if not why, in one line', () => {
    for (const t of [probe.afxdp, probe.tap]) {
      expect(typeof t.available).toBe('boolean');
      if (!t.available) {
        expect(t.reason).toMatch(/\S/);
        expect(t.reason).not.toContain('\n');
      }
    }
    if (!isRoot()) expect(probe.afxdp).toEqual({ available: false, reason: expect.stringContaining('root') });
  });
});

const skip = rootSkipReason() ?? (probe.afxdp.available && probe.tap.available ? null : `${probe.afxdp.reason ?? ''} ${probe.tap.reason ?? ''}`.trim());

describe.skipIf(skip !== null)(`native addon errors and checks${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  beforeAll(() => { lab = privateLab('na'); lab.up(); });
  afterAll(() => { lab?.down(); });

  it('pins the N-API version', () => {
    expect(loadNative().napiVersion).toBe(8);
  });

  it('throws SystemError with syscall and errno for kernel failures', () => {
    let e: unknown;
    try { BpfMap.open('/sys/fs/bpf/strata-no-such-map'); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(SystemError);
    expect(e).toBeInstanceOf(StrataError);
    expect((e as SystemError).code).toBe('ERR_STRATA_SYSCALL');
    expect((e as SystemError).syscall).toBe('bpf_obj_get');
    expect((e as SystemError).errno).toBe(2);

    expect(() => AfXdpLink.open({ iface: 'nosuch0', netns: lab.serverNs })).toThrow(SystemError);
    expect(() => TapLink.open({ name: 'nosuchtap0', netns: lab.serverNs })).toThrow(/no TAP device nosuchtap0/);
    expect(() => AfXdpLink.open({ iface: lab.serverIface, netns: 'no-such-netns-xyz' })).toThrow(SystemError);
  });

  it('throws InvalidArgumentError for bad arguments, before any syscall', () => {
    const n = loadNative();
    expect(() => AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, frameSize: 1000 as 2048 })).toThrow(InvalidArgumentError);
    expect(() => AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, rxSize: 1000 })).toThrow(/powers of two/);
    expect(() => n.mapLookup(-1 as number, new Uint8Array(4), new Uint8Array(4))).toThrow(SystemError);
    let e: unknown;
    try { (n.xdpAttach as (o: unknown) => unknown)({ ifname: 's0', mode: 'fast', objPath: 'x', pinRoot: '/x' }); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as InvalidArgumentError).code).toBe('ERR_STRATA_INVALID_ARG');
  });

  it('says plainly when the driver cannot do zero-copy', () => {
    let e: unknown;
    try { AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, mode: 'zerocopy', frameCount: 64 }); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(UnavailableError);
    expect((e as UnavailableError).code).toBe('ERR_STRATA_UNAVAILABLE');
    expect((e as Error).message).toMatch(/zero-copy/);
    // and 'auto' on the same device falls back to copy mode by itself
    const l = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, mode: 'auto', frameCount: 64 });
    expect(l.info.zerocopy).toBe(false);
    l.close();
  });

  it('refuses a second socket on a taken queue, and a burst that does not fit', () => {
    const a = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, frameCount: 128 });
    try {
      expect(() => AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, frameCount: 128 })).toThrow(/busy/i);
      const b = new Burst(4);
      const x = (a as unknown as { x: { rx(d: Uint32Array, s: number, m: number): number } }).x;
      expect(() => x.rx(b.desc, 2, 4)).toThrow(ArgumentRangeError);
      expect(() => x.rx(b.desc, 2, 4)).toThrow(expect.objectContaining({ code: 'ERR_STRATA_ARG_RANGE' }));
      expect(() => x.rx(new Uint16Array(8) as unknown as Uint32Array, 0, 4)).toThrow(ArgumentTypeError);
      expect(() => x.rx(b.desc, 0.5, 1)).toThrow(RangeError);
      // Every frame is accounted for: half in the fill ring, half free.
      expect(a.xskStats().fillOutstanding + a.xskStats().freeFrames).toBe(128);
    } finally {
      a.close();
    }
    // Closed means closed: the next call is an error, not a crash.
    expect(() => a.recv(new Burst(1))).toThrow(/closed/);
  });

  it('creates a TAP device on demand and removes it on close (non-persistent)', () => {
    const t = TapLink.open({ name: 'stest0', netns: lab.serverNs, create: true, frameCount: 16 });
    expect(run(['ip', '-n', lab.serverNs, 'link', 'show', 'stest0'])).toContain('stest0');
    t.close();
    expect(tryRun(['ip', '-n', lab.serverNs, 'link', 'show', 'stest0']).status).not.toBe(0);
  });
});
