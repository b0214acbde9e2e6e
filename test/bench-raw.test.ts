// The raw benchmark's pieces against real peers, in a private lab: the C load
// generator (bench/c/udpgen.bin) from the client namespace against each echo
// version in the server namespace. Short, bounded runs at a modest offered
// load; the assertions are on counts (replies arrived, every echo was one of
// ours, the echo's own counters agree), never on times or rates.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import {
  completeChecksumsOnWire, cpuSeconds, runGenerator, startVersion, udpgenPath, versionTarget, versionUnavailable, type RawTransport,
} from '../src/bench/raw.js';
import { tryRun } from '../src/util/run.js';

const skip = rootSkipReason() ?? (existsSync(udpgenPath) ? null : `udpgen not built (${udpgenPath})`);
const lab = privateLab('raw');
const cores = os.cpus().length;
const opts = { pollMode: 'event' as const, burst: 64, port: 7, cpus: { dataplane: cores - 1, generator: Math.max(0, cores - 2) } };

describe.skipIf(skip !== null)('raw benchmark in a private lab', () => {
  beforeAll(() => {
    lab.up();
    completeChecksumsOnWire(lab);
  });
  afterAll(() => {
    lab.down();
  });

  const cases: RawTransport[] = ['kernel', 'afxdp', 'tap', 'cref'];
  for (const t of cases) {
    test(`udpgen gets its datagrams echoed by the ${t} version`, async (ctx) => {
      const why = versionUnavailable(t);
      if (why) ctx.skip(why);
      const v = await startVersion(t, lab, opts);
      let stats: Record<string, unknown> | null = null;
      let r;
      try {
        const cpuBefore = cpuSeconds(v.pid);
        r = await runGenerator(lab, versionTarget(t, lab), { rate: 5000, duration: 1, flows: 4, payload: 64, port: 7, cpu: opts.cpus.generator, echoPid: v.pid, drain: 0.5 });
        expect(cpuSeconds(v.pid)).toBeGreaterThanOrEqual(cpuBefore);
      } finally {
        stats = await v.stop();
      }
      const g = r.gen;
      expect(g.sent).toBeGreaterThan(1000);
      expect(g.send_errors).toBe(0);
      // Every reply carried our magic, the sending flow and a sequence number we sent.
      expect(g.bad).toBe(0);
      // Replies arrived, at most one per request; at 5 kpps on an idle echo nearly all do.
      expect(g.received).toBeGreaterThan(g.sent * 0.5);
      expect(g.received).toBeLessThanOrEqual(g.sent);
      // The echo's own count covers what the generator saw (it also echoed the warm ARP and may have echoed late ones).
      expect(stats).not.toBeNull();
      const e = ((stats!.echo ?? stats) as Record<string, number>);
      expect(e.echoed).toBeGreaterThanOrEqual(g.received);
      expect(r.cpu).toBeGreaterThanOrEqual(0);
    });
  }

  test('nothing is left behind by the AF_XDP versions', () => {
    // startVersion().stop() detached XDP and removed the pins.
    expect(existsSync(lab.pinDir)).toBe(false);
    const q = tryRun(lab.server(['ip', '-d', 'link', 'show', lab.serverIface]));
    expect(q.stdout).not.toMatch(/prog\/xdp id/);
    // No echo process of this lab survives (they all name the lab's server namespace).
    const procs = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => {
      try { return readFileSync(`/proc/${p}/cmdline`, 'utf8'); } catch { return ''; }
    });
    expect(procs.filter((c) => c.includes(`/run/netns/${lab.serverNs}`) || c.includes(lab.pinDir))).toEqual([]);
  });
});
