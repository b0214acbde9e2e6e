// The pure parts of `strata bench`: merging repeated runs into samples, and
// checking a run against the raw workload's targets.
import { describe, expect, test } from 'vitest';
import { mergeRows } from '../src/cli/bench.js';
import { rawTargets, cpuSeconds } from '../src/bench/raw.js';
import type { ResultRow } from '../src/report/results.js';

const row = (transport: string, point: string, echoed: number, cpu: number): ResultRow => ({
  workload: 'raw', transport, point,
  metrics: { echoed: { unit: 'pps', better: 'higher', samples: [echoed] }, 'CPU/pkt': { unit: 'ns', better: 'lower', samples: [cpu] } },
});

describe('strata bench', () => {
  test('mergeRows keeps every repeat as a sample of the same row', () => {
    const into: ResultRow[] = [];
    mergeRows(into, [row('afxdp', 'saturation', 100, 10), row('cref', 'saturation', 110, 8)]);
    mergeRows(into, [row('afxdp', 'saturation', 120, 12), { workload: 'raw', transport: 'tap', point: 'saturation', metrics: {}, unavailable: 'no tun' }]);
    expect(into.map((r) => [r.transport, r.metrics.echoed?.samples ?? null, r.unavailable ?? null])).toEqual([
      ['afxdp', [100, 120], null],
      ['cref', [110], null],
      ['tap', null, 'no tun'],
    ]);
  });

  test('rawTargets compares medians and says met or MISSED with the ratio', () => {
    const rows = [row('afxdp', 'saturation', 95, 12), row('cref', 'saturation', 100, 10), row('tap', 'saturation', 50, 40)];
    expect(rawTargets(rows)).toEqual([
      '- TS on AF_XDP vs C reference, saturation pps: 95 % (target >= 90 %): met',
      '- TS on AF_XDP vs C reference, CPU per packet: 1.20x (target <= 1.5x): met',
      '- AF_XDP vs TAP, saturation pps: 1.90x (target >= 2x): MISSED',
    ]);
    expect(rawTargets([row('afxdp', 'saturation', 80, 20), row('cref', 'saturation', 100, 10)]).slice(0, 2)).toEqual([
      '- TS on AF_XDP vs C reference, saturation pps: 80 % (target >= 90 %): MISSED',
      '- TS on AF_XDP vs C reference, CPU per packet: 2.00x (target <= 1.5x): MISSED',
    ]);
    expect(rawTargets([])[0]).toBe('- TS on AF_XDP vs C reference, saturation pps: not measured here');
  });

  test('cpuSeconds reads user+system time of a live process', () => {
    let x = 0;
    for (let i = 0; i < 5e7; i++) x += i & 1;
    expect(x).toBe(2.5e7);
    expect(cpuSeconds(process.pid)).toBeGreaterThan(0);
  });
});
