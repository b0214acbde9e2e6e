// The http workload of `strata bench` in a private lab: wrk from the client
// namespace against node:http and strata's hello server on the kernel, TAP
// and AF_XDP. Short bounded runs; the assertions are on counts (requests
// served, rows present, nothing left behind), never on times or rates.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { httpWorkload, HTTP_POINT } from '../src/bench/http.js';
import { parseWrk, wrkAvailable, wrkTimeUs } from '../src/bench/wrk.js';
import { tryRun } from '../src/util/run.js';
import { pickTransports } from '../src/bench/tcp-measure.js';
import type { ResultRow } from '../src/report/results.js';

const WRK_OUT = `Running 1s test @ http://127.0.0.1:18555/
  1 threads and 5 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.62ms   12.60ms 102.07ms   93.98%
    Req/Sec     5.03k     4.43k   12.72k    70.00%
  Latency Distribution
     50%  598.00us
     75%    2.82ms
     90%   10.26ms
     99%   76.05ms
  5032 requests in 1.01s, 609.34KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   4992.83
Transfer/sec:    604.60KB
`;

describe('wrk report parsing', () => {
  test('requests, rate, percentiles in microseconds, socket errors and non-2xx', () => {
    const r = parseWrk(WRK_OUT)!;
    expect(r.requests).toBe(5032);
    expect(r.rps).toBe(4992.83);
    expect(r.seconds).toBeCloseTo(1.01, 6);
    expect(r.latency).toEqual({ p50: 598, p75: 2820, p90: 10260, p99: 76050 });
    expect(r.socketErrors).toEqual({ connect: 0, read: 2, write: 0, timeout: 1 });
    expect(r.non2xx).toBe(7);
  });
  test('units and a failed run', () => {
    expect(wrkTimeUs('1.50s')).toBe(1.5e6);
    expect(wrkTimeUs('2.00m')).toBe(120e6);
    expect(wrkTimeUs('12.5us')).toBe(12.5);
    expect(Number.isNaN(wrkTimeUs('fast'))).toBe(true);
    expect(parseWrk('unable to connect to 10.200.0.2:8080 Connection refused')).toBeNull();
  });
});

describe('transport selection', () => {
  const known = ['node', 'kernel', 'tap', 'afxdp', 'nginx'];
  test('all by default; kernel brings its baselines (node:http, nginx); unknown names are reported and skipped', () => {
    const said: string[] = [];
    const ctx = (transports: string[] | null) => ({ transports, progress: (l: string) => { said.push(l); } });
    expect(pickTransports(ctx(null), known, 'http')).toEqual(known);
    expect(pickTransports(ctx(['afxdp', 'kernel']), known, 'http')).toEqual(['node', 'kernel', 'afxdp', 'nginx']);
    expect(pickTransports(ctx(['tap', 'cref']), known, 'http')).toEqual(['tap']);
    expect(said).toEqual([`http: no transport 'cref' (known: ${known.join(', ')}); skipped`]);
  });
});

const skip = rootSkipReason() ?? wrkAvailable();
const lab = privateLab('bhttp');

describe.skipIf(skip !== null)('http workload in a private lab', () => {
  let rows: ResultRow[] = [];
  const lines: string[] = [];
  beforeAll(async () => {
    lab.up();
    rows = await httpWorkload.run({ lab, quick: true, duration: 1, transports: null, options: new Map(), progress: (l) => { lines.push(l); } });
  }, 240_000);
  afterAll(() => { lab.down(); });

  test('one row per version, in table order', () => {
    expect(rows.map((r) => r.transport)).toEqual(['node', 'kernel', 'tap', 'afxdp']);
    for (const r of rows) expect(r.point).toBe(HTTP_POINT);
  });

  test('the kernel versions served requests without errors and report CPU, softirq and memory', () => {
    for (const t of ['node', 'kernel']) {
      const r = rows.find((x) => x.transport === t)!;
      expect(r.unavailable, `${t}: ${r.unavailable}\n${lines.join('\n')}`).toBeUndefined();
      expect(r.metrics['req/s']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.errors!.samples[0]).toBe(0);
      expect(r.metrics.p99!.samples[0]).toBeGreaterThanOrEqual(r.metrics.p50!.samples[0]!);
      expect(r.metrics['CPU/req']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics['softirq/req']!.samples[0]).toBeGreaterThanOrEqual(0);
      expect(r.metrics.RSS!.samples[0]).toBeGreaterThan(1);
      expect(r.note).toMatch(/\d+ requests in/);
    }
  });

  test('TAP and AF_XDP either served requests or say why not', () => {
    for (const t of ['tap', 'afxdp']) {
      const r = rows.find((x) => x.transport === t)!;
      if (r.unavailable !== undefined) { expect(r.unavailable.length).toBeGreaterThan(0); continue; }
      expect(r.metrics['req/s']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.errors!.samples[0]).toBe(0);
      expect(r.metrics['CPU/req']!.samples[0]).toBeGreaterThan(0);
    }
  });

  test('targets: one line comparing AF_XDP with node:http', () => {
    const t = httpWorkload.targets!(rows);
    expect(t).toHaveLength(1);
    expect(t[0]).toMatch(/AF_XDP vs node:http/);
  });

  test('nothing is left behind: no server process, no XDP program, no pins', () => {
    expect(existsSync(lab.pinDir)).toBe(false);
    expect(tryRun(lab.server(['ip', '-d', 'link', 'show', lab.serverIface])).stdout).not.toMatch(/prog\/xdp/);
    expect(tryRun(lab.server(['ss', '-Hltn', 'sport = :8080'])).stdout.trim()).toBe('');
  });
});
