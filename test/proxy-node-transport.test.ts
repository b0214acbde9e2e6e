// The node proxy's transport choice as a unit, on injected probe results:
// `auto` takes AF_XDP, else TAP, else the kernel, and says why each better
// one was passed over; explicit kinds are taken as configured.
import { describe, expect, it } from 'vitest';
import { chooseTransport, describeChoice, type TransportProbe } from '../src/proxy-runtime/transport-choice.js';
import { parseConfig } from '../src/config/index.js';

const up = { available: true };
const down = (reason: string) => ({ available: false, reason });

describe('auto', () => {
  it('prefers AF_XDP when it is available', () => {
    const c = chooseTransport('auto', { afxdp: up, tap: up }, '0.0.0.0');
    expect(c).toEqual({ requested: 'auto', kind: 'afxdp', reason: 'AF_XDP is available (preferred)', skipped: [] });
    expect(describeChoice(c)).toBe('afxdp (AF_XDP is available (preferred))');
  });

  it('falls back to TAP with the reason AF_XDP could not run', () => {
    const c = chooseTransport('auto', { afxdp: down('kernel without AF_XDP (no XDP in /proc/net/protocols)'), tap: up }, '10.201.0.2');
    expect(c.kind).toBe('tap');
    expect(c.skipped).toEqual([{ kind: 'afxdp', reason: 'kernel without AF_XDP (no XDP in /proc/net/protocols)' }]);
    expect(describeChoice(c)).toBe('tap (TAP is available (AF_XDP is not); afxdp: kernel without AF_XDP (no XDP in /proc/net/protocols))');
  });

  it('falls back to the kernel with both reasons', () => {
    const probe: TransportProbe = { afxdp: down('needs root (CAP_NET_ADMIN, CAP_BPF)'), tap: down('needs root (CAP_NET_ADMIN, CAP_BPF)') };
    const c = chooseTransport('auto', probe, '0.0.0.0');
    expect(c.kind).toBe('kernel');
    expect(c.reason).toBe('no kernel-bypass transport is available');
    expect(c.skipped.map((s) => s.kind)).toEqual(['afxdp', 'tap']);
    expect(describeChoice(c)).toContain('afxdp: needs root');
  });

  it('a missing device counts as unavailable', () => {
    const c = chooseTransport('auto', { afxdp: down('no interface s0 here (bring the lab up: strata topo up)'), tap: down('no interface tap0 here (bring the lab up: strata topo up)') }, '0.0.0.0');
    expect(c.kind).toBe('kernel');
    expect(describeChoice(c)).toMatch(/afxdp: no interface s0 .*; tap: no interface tap0/);
  });

  it('a loopback address is the kernel\'s, whatever the host offers', () => {
    for (const addr of ['127.0.0.1', '127.1.2.3', '::1']) {
      const c = chooseTransport('auto', { afxdp: up, tap: up }, addr);
      expect(c.kind).toBe('kernel');
      expect(c.reason).toBe(`listener address ${addr} is loopback`);
      expect(c.skipped).toEqual([{ kind: 'afxdp', reason: 'only the kernel serves loopback' }, { kind: 'tap', reason: 'only the kernel serves loopback' }]);
    }
  });
});

describe('explicit transports', () => {
  it('are taken as configured (opening them fails with the reason when they cannot run)', () => {
    const probe: TransportProbe = { afxdp: down('x'), tap: down('y') };
    for (const k of ['kernel', 'tap', 'afxdp'] as const) {
      expect(chooseTransport(k, probe, '0.0.0.0')).toEqual({ requested: k, kind: k, reason: 'configured', skipped: [] });
    }
  });
});

describe('config', () => {
  const base = (extra: string) => `listeners:\n  - name: web\n    port: 8080\n${extra}`;
  it('a listener transport defaults to auto and accepts auto|kernel|tap|afxdp', () => {
    expect(parseConfig(base(''), 'p.yaml').config!.listeners[0]!.transport).toBe('auto');
    for (const t of ['auto', 'kernel', 'tap', 'afxdp']) expect(parseConfig(base(`    transport: ${t}\n`), 'p.yaml').config!.listeners[0]!.transport).toBe(t);
    const bad = parseConfig(base('    transport: dpdk\n'), 'p.yaml');
    expect(bad.errors.map((e) => `${e.line}: ${e.field}: ${e.message}`)).toEqual(['4: listeners[0].transport: must be one of auto, kernel, tap, afxdp']);
  });

  it('drain.timeout and logging.path', () => {
    const c = parseConfig(`drain: { timeout: 5s }\nlogging: { path: /tmp/x.log, format: text, level: debug }\n${base('')}`, 'p.yaml').config!;
    expect(c.drain).toEqual({ timeoutMs: 5000 });
    expect(c.logging).toMatchObject({ path: '/tmp/x.log', format: 'text', level: 'debug' });
    const bad = parseConfig(`drain: { timeout: 5 }\n${base('')}`, 'p.yaml');
    expect(bad.errors[0]).toMatchObject({ line: 1, field: 'drain.timeout' });
  });

  it('an auto listener on the admin port is refused (it may end up on the kernel)', () => {
    const bad = parseConfig(`admin: { port: 8080 }\n${base('')}`, 'p.yaml');
    expect(bad.errors.map((e) => e.field)).toEqual(['admin.port']);
  });
});

describe('kernel addresses', () => {
  it('an address a kernel interface holds is the kernel\'s (the stack must not claim it)', () => {
    const c = chooseTransport('auto', { afxdp: up, tap: up, kernelAddrs: ['10.200.0.2', '127.0.0.1'] }, '10.200.0.2');
    expect(c.kind).toBe('kernel');
    expect(c.reason).toBe('listener address 10.200.0.2 belongs to a kernel interface');
    expect(c.skipped[0]).toEqual({ kind: 'afxdp', reason: "10.200.0.2 is a kernel interface's address here" });
    expect(chooseTransport('auto', { afxdp: up, tap: up, kernelAddrs: ['10.200.0.2'] }, '10.200.0.3').kind).toBe('afxdp');
  });
});
