// The tcp workload of `strata bench` in a private lab: the C client
// (bench/c/tcpload.c) from the client namespace against the userspace TCP on
// AF_XDP and TAP and against the kernel's TCP with offloads off and on.
// Short bounded runs; the assertions are on counts (bytes moved, connections
// completed, round trips, rows present, offloads restored, nothing left
// behind), never on times or rates.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { readOffloads, tcpWorkload, TCP_POINTS } from '../src/bench/tcp.js';
import { tcploadPath } from '../src/bench/tcp-measure.js';
import { tryRun } from '../src/util/run.js';
import type { ResultRow } from '../src/report/results.js';

const skip = rootSkipReason() ?? (existsSync(tcploadPath) ? null : `tcpload not built (${tcploadPath})`);
const lab = privateLab('btcp');

describe.skipIf(skip !== null)('tcp workload in a private lab', () => {
  let rows: ResultRow[] = [];
  const lines: string[] = [];
  let before: { c: ReturnType<typeof readOffloads>; s: ReturnType<typeof readOffloads> };
  beforeAll(async () => {
    lab.up();
    before = { c: readOffloads(lab.clientNs, lab.clientIface), s: readOffloads(lab.serverNs, lab.serverIface) };
    rows = await tcpWorkload.run({ lab, quick: true, duration: 1, transports: null, options: new Map(), progress: (l) => { lines.push(l); } });
  }, 300_000);
  afterAll(() => { lab.down(); });

  const row = (t: string, p: string): ResultRow => rows.find((r) => r.transport === t && r.point === p)!;

  test('rows for every version and point (kernel-tso: bulk only)', () => {
    const keys = rows.map((r) => `${r.transport}/${r.point}`);
    for (const t of ['afxdp', 'tap', 'kernel']) for (const p of Object.values(TCP_POINTS)) expect(keys).toContain(`${t}/${p}`);
    expect(keys).toHaveLength(3 * 4 + 1);
    expect(keys).toContain(`kernel-tso/${TCP_POINTS.bulk}`);
    expect(keys.filter((k) => k.startsWith('kernel-tso/'))).toHaveLength(1);
  });

  test('the kernel moved bytes, completed connections and round trips', () => {
    for (const t of ['kernel', 'kernel-tso']) {
      const b = row(t, TCP_POINTS.bulk);
      expect(b.unavailable, `${t}: ${b.unavailable}\n${lines.join('\n')}`).toBeUndefined();
      expect(b.metrics.throughput!.samples[0]).toBeGreaterThan(0);
      expect(b.metrics['CPU/GiB']!.samples[0]).toBeGreaterThan(0);
      expect(b.metrics['softirq/GiB']!.samples[0]).toBeGreaterThanOrEqual(0);
      expect(b.metrics.RSS!.samples[0]).toBeGreaterThan(1);
      expect(b.note).toMatch(/MiB in/);
    }
    const c = row('kernel', TCP_POINTS.crr);
    expect(c.unavailable).toBeUndefined();
    expect(c.metrics['conn/s']!.samples[0]).toBeGreaterThan(0);
    expect(c.metrics.failed!.samples[0]).toBe(0);
    const p = row('kernel', TCP_POINTS.pingpong);
    expect(p.unavailable).toBeUndefined();
    expect(p.metrics['round trips/s']!.samples[0]).toBeGreaterThan(0);
    expect(p.metrics.p99!.samples[0]).toBeGreaterThanOrEqual(p.metrics.p50!.samples[0]!);
  });

  test('the stack on AF_XDP and TAP either did the same or says why not', () => {
    for (const t of ['afxdp', 'tap']) {
      for (const p of Object.values(TCP_POINTS)) {
        const r = row(t, p);
        if (r.unavailable !== undefined) { expect(r.unavailable.length).toBeGreaterThan(0); continue; }
        const first = Object.values(r.metrics)[0]!.samples[0]!;
        expect(first, `${t} ${p}`).toBeGreaterThan(0);
      }
    }
  });

  test('offloads on both veth ends are back as they were', () => {
    expect(readOffloads(lab.clientNs, lab.clientIface)).toEqual(before.c);
    expect(readOffloads(lab.serverNs, lab.serverIface)).toEqual(before.s);
  });

  test('targets: the throughput and ping-pong lines', () => {
    const t = tcpWorkload.targets!(rows);
    expect(t.length).toBeGreaterThanOrEqual(2);
    expect(t[0]).toMatch(/single-connection throughput/);
    expect(t[1]).toMatch(/ping-pong p99/);
  });

  test('busy-poll ping-pong: the kernel row (client SO_BUSY_POLL) completed round trips', () => {
    const r = row('kernel', TCP_POINTS.pingpongBusy);
    expect(r.unavailable, r.unavailable).toBeUndefined();
    expect(r.metrics['round trips/s']!.samples[0]).toBeGreaterThan(0);
    expect(r.note).toMatch(/SO_BUSY_POLL/);
  });

  test('nothing is left behind: no server, no XDP program, no pins', () => {
    expect(existsSync(lab.pinDir)).toBe(false);
    expect(tryRun(lab.server(['ip', '-d', 'link', 'show', lab.serverIface])).stdout).not.toMatch(/prog\/xdp/);
    expect(tryRun(lab.server(['ss', '-Hltn'])).stdout.trim()).toBe('');
  });
});
