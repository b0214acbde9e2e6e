// The XDP program's life cycle across process deaths: detached on SIGINT and
// SIGTERM (with the signal re-raised), and after a SIGKILL the next start
// detects and replaces the leftovers (program still attached, stale pins);
// lab.down() then leaves nothing behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { EchoResponder } from './helpers/echo-responder.js';
import { probeTransports, repoRoot } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { XdpProgram } from '../src/xdp/program.js';
import { PROG_NAME } from '../src/xdp/shared.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

interface Holder { child: ChildProcess; info: { id: number; mode: string; recovered: { staleProgramIds: number[]; stalePins: boolean } }; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

function startHolder(lab: Lab): Promise<Holder> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'test/helpers/xdp-holder.ts'), lab.serverNs, lab.serverIface, lab.pinDir, lab.afxdpAddr], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return new Promise((resolve, reject) => {
    let out = '', err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ child, info: JSON.parse(out.slice(0, nl)), exit });
    });
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    void exit.then(({ code }) => reject(new Error(`holder exited early (${code}): ${err}`)));
  });
}

const strataProgs = (lab: Lab) => XdpProgram.query({ iface: lab.serverIface, netns: lab.serverNs }).programs.filter((p) => p.name === PROG_NAME);

describe.skipIf(skip !== null)(`XDP program life cycle${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;

  beforeAll(() => { lab = privateLab('rc'); lab.up(); });
  afterAll(() => { lab?.down(); });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`detaches and unpins on ${sig}, and dies of the signal`, async () => {
      const h = await startHolder(lab);
      expect(strataProgs(lab).map((p) => p.id)).toEqual([h.info.id]);
      expect(existsSync(join(lab.pinDir, 'xsks_map'))).toBe(true);
      h.child.kill(sig);
      const { signal } = await h.exit;
      expect(signal).toBe(sig);
      expect(strataProgs(lab)).toEqual([]);
      expect(existsSync(lab.pinDir)).toBe(false);
    });
  }

  it('recovers after SIGKILL: the next start replaces the stale program and pins, and works', async () => {
    const h = await startHolder(lab);
    h.child.kill('SIGKILL');
    expect((await h.exit).signal).toBe('SIGKILL');
    // The leftovers are really there ...
    expect(strataProgs(lab).map((p) => p.id)).toEqual([h.info.id]);
    expect(readdirSync(lab.pinDir)).toContain('xsks_map');

    // ... and a new start takes over.
    const p = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir });
    let link: AfXdpLink | undefined;
    let r: EchoResponder | undefined;
    try {
      expect(p.recovered.staleProgramIds).toEqual([h.info.id]);
      expect(p.recovered.stalePins).toBe(true);
      expect(p.id).not.toBe(h.info.id);
      expect(strataProgs(lab).map((x) => x.id)).toEqual([p.id]);
      expect(p.steering()).toEqual([]);   // fresh maps, not the dead run's
      p.steer({ addr: lab.afxdpAddr });
      link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, xdp: p, frameCount: 256 });
      r = new EchoResponder(link, [lab.afxdpAddr]);
      r.start();
      const status = await new Promise<number | null>((res) => {
        spawn('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', 'ping', '-c', '2', '-i', '0.2', '-W', '2', lab.afxdpAddr]).on('exit', res);
      });
      expect(status).toBe(0);
      expect(r.counts.icmp).toBe(2);
    } finally {
      r?.stop();
      link?.close();
      p.detach();
    }
    expect(strataProgs(lab)).toEqual([]);
    expect(existsSync(lab.pinDir)).toBe(false);
  });

  it('refuses to take the interface from a live owner unless asked, and the old owner then leaves the new program alone', async () => {
    const h = await startHolder(lab);
    let err: unknown;
    try { XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir }); } catch (e) { err = e; }
    expect((err as { code?: string }).code).toBe('ERR_STRATA_XDP_BUSY');
    expect(String((err as Error).message)).toContain(String(h.child.pid));
    expect(strataProgs(lab).map((p) => p.id)).toEqual([h.info.id]);   // untouched

    const p = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, replace: true });
    try {
      expect(p.recovered.staleProgramIds).toEqual([h.info.id]);
      expect(p.owner()).toBe(process.pid);
      // The old owner exits cleanly: its exit handler must not remove our program or pins.
      h.child.kill('SIGTERM');
      await h.exit;
      expect(strataProgs(lab).map((x) => x.id)).toEqual([p.id]);
      expect(readdirSync(lab.pinDir)).toContain('xsks_map');
      p.steer({ addr: lab.afxdpAddr });
      expect(p.steering()).toEqual([{ addr: lab.afxdpAddr }]);
    } finally {
      p.detach();
    }
    expect(existsSync(lab.pinDir)).toBe(false);
  });

  it('lab.down() removes a program left by a SIGKILLed process, its pins and the namespaces', async () => {
    const h = await startHolder(lab);
    h.child.kill('SIGKILL');
    await h.exit;
    expect(existsSync(lab.pinDir)).toBe(true);
    lab.down();
    expect(existsSync(lab.pinDir)).toBe(false);
    expect(run(['ip', 'netns', 'list'])).not.toContain(lab.serverNs);
    expect(run(['ip', '-o', 'link', 'show'])).not.toMatch(/prog\/xdp.*strata_xdp/);
    // Leave a lab for afterAll's down() to remove again (it must be idempotent).
    lab.up();
  });
});
