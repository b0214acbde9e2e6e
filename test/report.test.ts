import { describe, expect, test } from 'vitest';
import { compare, renderComparison, renderHtml, renderMarkdown } from '../src/report/render.js';
import { RESULTS_SCHEMA, summarize, type ResultSet } from '../src/report/results.js';

function set(pps: number[], lat: number[]): ResultSet {
  return {
    schema: RESULTS_SCHEMA,
    meta: {
      startedAt: '2026-11-25T00:00:00Z', hostname: 'h', kernel: 'Linux 6.18', cpu: 'x', cores: 2, memoryBytes: 2 ** 34,
      node: 'v20', strata: '0.1.0', gitCommit: 'abc', versions: {}, settings: { quick: true },
    },
    rows: [
      { workload: 'raw', transport: 'afxdp', point: 'saturation', metrics: {
        pps: { unit: 'pkt/s', better: 'higher', samples: pps },
        cpu: { unit: 'ns/pkt', better: 'lower', samples: lat },
      } },
      { workload: 'raw', transport: 'tap', point: 'saturation', metrics: {}, unavailable: 'no /dev/net/tun' },
    ],
  };
}

describe('bench report', () => {
  test('summaries are min, median and max', () => {
    expect(summarize([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3, n: 3 });
    expect(summarize([4, 1, 2, 3])).toEqual({ min: 1, median: 2.5, max: 4, n: 4 });
  });

  test('markdown shows median [min–max] with repeats and the reason for unavailable rows', () => {
    const md = renderMarkdown(set([1_000_000, 1_200_000, 900_000], [800, 850, 900]));
    expect(md).toContain('| transport | point | pps (pkt/s) | cpu (ns/pkt) |');
    expect(md).toContain('| afxdp | saturation | 1.00 M [900.0 k–1.20 M] | 850 [800–900] |');
    expect(md).toContain('unavailable: no /dev/net/tun');
    expect(md).toContain('(3 repeats: median [min–max])');
  });

  test('html is self-contained with one chart per metric', () => {
    const html = renderHtml(set([1, 2, 3], [4, 5, 6]));
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<canvas id="c0">');
    expect(html).toContain('<canvas id="c1">');
    expect(html).not.toMatch(/<script src=/);
    expect(html.length).toBeGreaterThan(100_000); // Chart.js is inlined
  });

  test('compare flags only differences outside the noise band', () => {
    const a = set([100, 110, 120], [10, 11, 12]);
    const within = compare(a, set([105, 115, 125], [10.5, 11, 13]));
    expect(within.every((d) => !d.significant)).toBe(true);
    const outside = compare(a, set([200, 210, 220], [20, 21, 22]));
    const pps = outside.find((d) => d.metric === 'pps')!;
    const cpu = outside.find((d) => d.metric === 'cpu')!;
    expect(pps.significant && pps.improved).toBe(true);
    expect(cpu.significant && !cpu.improved).toBe(true);
    expect(renderComparison(outside)).toContain('WORSE (outside noise)');
    const single = compare(set([1], [1]), set([2], [2]));
    expect(single.every((d) => !d.significant && !d.banded)).toBe(true);
  });
});
