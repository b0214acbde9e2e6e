// Ctrl-C in the middle of the tcp workload: interrupt() (what `strata bench`
// calls on SIGINT) ends the server and the client, detaches the XDP program,
// removes the pins and puts the veth offloads back, and run() rejects with
// ERR_STRATA_INTERRUPTED instead of carrying on.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { readOffloads, tcpWorkload } from '../src/bench/tcp.js';
import { tcploadPath } from '../src/bench/tcp-measure.js';
import { probeTransports } from '../src/link/native.js';
import { tryRun } from '../src/util/run.js';

const skip = rootSkipReason() ?? (existsSync(tcploadPath) ? null : `tcpload not built (${tcploadPath})`);
const lab = privateLab('btint');

/** Resolves once cond() holds, polling every 100 ms (bounded by the test timeout). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 100));
}

const xdpAttached = (): boolean => /prog\/xdp/.test(tryRun(lab.server(['ip', '-d', 'link', 'show', lab.serverIface])).stdout);
const serverListening = (): boolean => tryRun(lab.server(['ss', '-Hltn'])).stdout.trim() !== '';
/** pids of the processes living in a namespace of the lab (the server, the client generator). */
function processesIn(ns: string): number[] {
  const want = statSync(`/run/netns/${ns}`).ino;
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { if (statSync(`/proc/${d}/ns/net`).ino === want) out.push(Number(d)); } catch { /* gone */ }
  }
  return out;
}
const clientConnected = (): boolean => tryRun(lab.client(['ss', '-Htn', 'state', 'established'])).stdout.trim() !== '';

describe.skipIf(skip !== null)('interrupting the tcp workload', () => {
  beforeAll(() => { lab.up(); });
  afterAll(() => { lab.down(); });

  test('during the kernel run with TSO/GRO on: offloads restored, nothing listening', async () => {
    const before = { c: readOffloads(lab.clientNs, lab.clientIface), s: readOffloads(lab.serverNs, lab.serverIface) };
    const run = tcpWorkload.run({ lab, quick: false, duration: 60, transports: ['kernel-tso'], options: new Map(), progress: () => {} });
    const settled = run.then(() => null, (e: unknown) => e);
    await until(clientConnected);
    // The run changed the offloads for TSO …
    expect(readOffloads(lab.clientNs, lab.clientIface).tso).toBe(true);
    tcpWorkload.interrupt!();
    const err = await settled as { code?: string } | null;
    expect(err?.code).toBe('ERR_STRATA_INTERRUPTED');
    // … and put them back.
    expect(readOffloads(lab.clientNs, lab.clientIface)).toEqual(before.c);
    expect(readOffloads(lab.serverNs, lab.serverIface)).toEqual(before.s);
    expect(serverListening()).toBe(false);
    expect(processesIn(lab.serverNs)).toEqual([]);
    expect(processesIn(lab.clientNs)).toEqual([]);
  });

  test('during the AF_XDP run: no XDP program, no pins, no server left', async (ctx) => {
    if (!probeTransports().afxdp.available) ctx.skip(probeTransports().afxdp.reason ?? 'AF_XDP unavailable');
    const run = tcpWorkload.run({ lab, quick: false, duration: 60, transports: ['afxdp'], options: new Map(), progress: () => {} });
    const settled = run.then(() => null, (e: unknown) => e);
    await until(() => xdpAttached() && clientConnected());
    tcpWorkload.interrupt!();
    const err = await settled as { code?: string } | null;
    expect(err?.code).toBe('ERR_STRATA_INTERRUPTED');
    expect(xdpAttached()).toBe(false);
    expect(existsSync(lab.pinDir)).toBe(false);
    expect(processesIn(lab.serverNs)).toEqual([]);
    expect(processesIn(lab.clientNs)).toEqual([]);
  });
});
