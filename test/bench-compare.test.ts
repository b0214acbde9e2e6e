import { afterAll, describe, expect, test } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { encode } from 'cbor-x';
import { RESULTS_SCHEMA, type ResultSet } from '../src/report/results.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-compare-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rs(pps: number[], p99: number[]): ResultSet {
  return {
    schema: RESULTS_SCHEMA,
    meta: { startedAt: '2026-11-25T00:00:00Z', hostname: 'h', kernel: 'Linux', cpu: 'x', cores: 2, memoryBytes: 1, node: 'v20', strata: '0.1.0', gitCommit: 'abc', versions: {}, settings: {} },
    rows: [{ workload: 'http', transport: 'afxdp', point: 'keep-alive GET', metrics: {
      rps: { unit: 'req/s', better: 'higher', samples: pps },
      p99: { unit: 'µs', better: 'lower', samples: p99 },
    } }],
  };
}

describe('strata bench compare', () => {
  test('flags only differences outside the noise band, reading JSON and CBOR', () => {
    const a = join(dir, 'a.json'), b = join(dir, 'b.cbor');
    writeFileSync(a, JSON.stringify(rs([20000, 21000, 22000], [900, 950, 1000])));
    // rps clearly better (band above A's), p99 within A's band.
    writeFileSync(b, encode(rs([30000, 31000, 32000], [920, 960, 1010])));
    const r = spawnSync(process.execPath, ['bin/strata.js', 'bench', 'compare', a, b], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\| http \| afxdp \| keep-alive GET \| rps \(req\/s\) \|.*\| \+47\.6% \| better \(outside noise\) \|/);
    expect(r.stdout).toMatch(/\| p99 \(µs\) \|.*\| within noise \|/);
    expect(r.stdout).toContain('1 of 2 figures differ beyond the noise band: http/afxdp/keep-alive GET/rps better');
  });

  test('refuses a file that is not a result set', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"hello":1}');
    const r = spawnSync(process.execPath, ['bin/strata.js', 'bench', 'compare', bad, bad], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('not a strata bench result set');
  });
});
