// strata xdp attach|status|detach, called through main() as the CLI does.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { probeTransports } from '../src/link/native.js';
import { main, parseDeny, parseSteer } from '../src/cli/xdp.js';
import { InvalidArgumentError } from '../src/util/errors.js';
import type { Lab } from '../src/lab/topo.js';

async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => { out += String(chunk); return true; });
  try {
    const code = await main(argv);
    return { code, out };
  } finally {
    spy.mockRestore();
  }
}

describe('strata xdp argument syntax', () => {
  it('parses --steer ADDR[/proto[/PORT[-PORT]]]', () => {
    expect(parseSteer('10.200.0.3')).toEqual({ addr: '10.200.0.3' });
    expect(parseSteer('10.200.0.3/udp')).toEqual({ addr: '10.200.0.3', proto: 'udp' });
    expect(parseSteer('10.200.0.3/tcp/80')).toEqual({ addr: '10.200.0.3', proto: 'tcp', portLo: 80, portHi: 80 });
    expect(parseSteer('fd00::3/udp/9000-9010')).toEqual({ addr: 'fd00::3', proto: 'udp', portLo: 9000, portHi: 9010 });
    expect(() => parseSteer('10.200.0.3/icmp')).toThrow(InvalidArgumentError);
    expect(() => parseSteer('10.200.0.3/udp/x')).toThrow(InvalidArgumentError);
  });

  it('parses --deny PREFIX[:PORT], with brackets for IPv6 ports', () => {
    expect(parseDeny('192.0.2.0/24')).toEqual({ prefix: '192.0.2.0/24' });
    expect(parseDeny('192.0.2.0/24:22')).toEqual({ prefix: '192.0.2.0/24', dstPort: 22 });
    expect(parseDeny('192.0.2.7:443')).toEqual({ prefix: '192.0.2.7', dstPort: 443 });
    expect(parseDeny('2001:db8::/32')).toEqual({ prefix: '2001:db8::/32' });
    expect(parseDeny('2001:db8::/32:53')).toEqual({ prefix: '2001:db8::/32', dstPort: 53 });
    expect(parseDeny('[2001:db8::1]:53')).toEqual({ prefix: '2001:db8::1', dstPort: 53 });
    expect(parseDeny('2001:db8::1')).toEqual({ prefix: '2001:db8::1' });
    expect(() => parseDeny('192.0.2.0/24:99999')).toThrow(InvalidArgumentError);
  });
});

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

describe.skipIf(skip !== null)(`strata xdp on a lab${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  beforeAll(() => { lab = privateLab('cl'); lab.up(); });
  afterAll(() => { lab?.down(); });

  it('attach leaves the program pinned and configured; status shows it; detach removes it', async () => {
    const base = ['--iface', lab.serverIface, '--netns', lab.serverNs];
    const a = await cli(['attach', ...base, '--mode', 'generic', '--steer', `${lab.afxdpAddr}/udp/9000-9001`, '--steer', 'fd00::3',
      '--deny', '192.0.2.0/24:22', '--deny', '[2001:db8::]:80', '--json']);
    expect(a.code).toBe(0);
    const att = JSON.parse(a.out);
    expect(att.mode).toBe('generic');
    expect(att.pinDir).toBe(lab.pinDir);
    expect(readdirSync(lab.pinDir)).toEqual(expect.arrayContaining(['xsks_map', 'counters', 'steer_rules', 'deny_src']));

    const s = await cli(['status', ...base, '--json']);
    expect(s.code).toBe(0);
    const st = JSON.parse(s.out);
    expect(st.attached).toBe(true);
    expect(st.id).toBe(att.id);
    expect(st.owner).toBe(0);   // nobody detaches it on exit: the CLI left it attached
    expect(st.mode).toBe('skb');
    expect(st.steering).toEqual(expect.arrayContaining([
      { addr: lab.afxdpAddr, proto: 'udp', portLo: 9000, portHi: 9001 }, { addr: 'fd00::3' },
    ]));
    expect(st.deny).toEqual(expect.arrayContaining([{ prefix: '192.0.2.0/24', dstPort: 22 }, { prefix: '2001:db8::/128', dstPort: 80 }]));
    expect(Object.keys(st.counters)).toContain('redirected');

    const text = await cli(['status', ...base]);
    expect(text.out).toContain(`strata_xdp id ${att.id}`);
    expect(text.out).toMatch(/redirected\s+\d+/);

    const d = await cli(['detach', ...base]);
    expect(d.code).toBe(0);
    expect(existsSync(lab.pinDir)).toBe(false);
    const after = await cli(['status', ...base, '--json']);
    expect(after.code).toBe(1);
    expect(JSON.parse(after.out).attached).toBe(false);
  });
});
