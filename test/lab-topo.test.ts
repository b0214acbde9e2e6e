import { afterAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { tryRun } from '../src/util/run.js';

const skip = rootSkipReason();
const lab = privateLab('topo');
afterAll(() => { if (!skip) lab.down(); });

const strata = (...args: string[]) => spawnSync(process.execPath, ['bin/strata.js', ...args], { encoding: 'utf8' });

describe.skipIf(skip !== null)(`lab topology${skip ? ` (skipped: ${skip})` : ''}`, () => {
  test('up is idempotent and builds both namespaces, the veth pair and the TAP device', () => {
    lab.up();
    lab.up();
    expect(lab.isUp()).toBe(true);
    const addrs = tryRun(['ip', '-n', lab.serverNs, '-o', 'addr']).stdout;
    expect(addrs.match(/10\.200\.0\.2\/24/g)).toHaveLength(1);
    expect(addrs.match(/10\.201\.0\.1\/24/g)).toHaveLength(1);
    // The client reaches the server's kernel address and, routed through it, the TAP subnet.
    expect(tryRun(lab.client(['ping', '-c', '1', '-W', '2', lab.kernelAddr])).status).toBe(0);
    expect(tryRun(lab.client(['ping', '-c', '1', '-W', '2', lab.tapKernelAddr])).status).toBe(0);
  });

  test('strata topo show --json prints the documented shape', () => {
    const r = strata('topo', 'show', '--json', '--prefix', lab.prefix);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      client: { netns: lab.clientNs, iface: 'c0', addr: '10.200.0.1' },
      server: { netns: lab.serverNs, iface: 's0' },
      targets: { kernel: { addr: '10.200.0.2' }, tap: { addr: '10.201.0.2' }, afxdp: { addr: '10.200.0.3' } },
    });
  });

  test('down leaves no namespace, link or pin behind, and a second down is harmless', () => {
    const r = strata('topo', 'down', '--prefix', lab.prefix);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(`/run/netns/${lab.clientNs}`)).toBe(false);
    expect(existsSync(`/run/netns/${lab.serverNs}`)).toBe(false);
    expect(existsSync(lab.pinDir)).toBe(false);
    expect(tryRun(['ip', 'netns', 'list']).stdout).not.toContain(lab.prefix);
    expect(strata('topo', 'down', '--prefix', lab.prefix).status).toBe(0);
    expect(strata('topo', 'show', '--prefix', lab.prefix).status).toBe(1);
  });
});
