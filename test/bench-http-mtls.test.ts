// The mtls workload of `strata bench` in a private lab: the C/OpenSSL client
// (bench/c/tcptls.c, presenting the dev client SVID) against node:https and
// strata's hello server on each transport, then through strata proxy and
// nginx terminating mTLS. Short bounded runs; assertions on counts only.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync } from 'node:fs';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { mtlsWorkload, MTLS_POINTS, tcptlsPath } from '../src/bench/mtls.js';
import { pointFor } from '../src/bench/proxy.js';
import { wrkAvailable } from '../src/bench/wrk.js';
import { nginxUnavailable } from '../src/bench/nginx.js';
import { tryRun } from '../src/util/run.js';
import type { ResultRow } from '../src/report/results.js';

const skip = rootSkipReason() ?? wrkAvailable() ?? nginxUnavailable() ?? (existsSync(tcptlsPath) ? null : `tcptls not built (${tcptlsPath})`);
const lab = privateLab('bmtls');

describe.skipIf(skip !== null)('mtls workload in a private lab', () => {
  let rows: ResultRow[] = [];
  const lines: string[] = [];
  beforeAll(async () => {
    lab.up();
    rows = await mtlsWorkload.run({ lab, quick: true, duration: 1, transports: null, options: new Map(), progress: (l) => { lines.push(l); } });
  }, 400_000);
  afterAll(() => { lab.down(); });

  test('a row per server version and per proxy, at both upstream placements', () => {
    expect(rows.filter((r) => r.point === MTLS_POINTS.server).map((r) => r.transport)).toEqual(['node', 'kernel', 'tap', 'afxdp']);
    expect(rows.filter((r) => r.point === MTLS_POINTS.proxy).map((r) => r.transport)).toEqual(['kernel', 'tap', 'afxdp', 'nginx']);
    expect(rows.filter((r) => r.point === pointFor('wire', MTLS_POINTS.proxy)).map((r) => r.transport)).toEqual(['kernel', 'tap', 'afxdp', 'nginx']);
  });

  test('over the kernel, every mTLS server and proxy answered the client-certificate GETs without errors', () => {
    const kernelRows = rows.filter((r) => ['node', 'kernel', 'nginx'].includes(r.transport));
    expect(kernelRows).toHaveLength(6);
    for (const r of kernelRows) {
      expect(r.unavailable, `${r.transport} ${r.point}: ${r.unavailable}\n${lines.join('\n')}`).toBeUndefined();
      expect(r.metrics['req/s']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.errors!.samples[0]).toBe(0);
      expect(r.metrics['CPU/req']!.samples[0]).toBeGreaterThan(0);
      expect(r.note).toMatch(/TLSv1\.3, client certificate/);
    }
  });

  test('TAP and AF_XDP either served or say why not', () => {
    for (const r of rows.filter((x) => x.transport === 'tap' || x.transport === 'afxdp')) {
      if (r.unavailable !== undefined) { expect(r.unavailable.length).toBeGreaterThan(0); continue; }
      expect(r.metrics['req/s']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.errors!.samples[0]).toBe(0);
    }
  });

  test('targets: server and proxy lines (one per placement)', () => {
    const t = mtlsWorkload.targets!(rows);
    expect(t).toHaveLength(3);
    expect(t[0]).toMatch(/with mTLS, our server on AF_XDP/);
    expect(t[1]).toMatch(/with mTLS, our proxy on AF_XDP.*upstream on loopback/);
    expect(t[2]).toMatch(/with mTLS, our proxy on AF_XDP.*upstream across the veth/);
  });

  test('nothing is left behind', () => {
    expect(existsSync(lab.pinDir)).toBe(false);
    expect(tryRun(lab.server(['ip', '-d', 'link', 'show', lab.serverIface])).stdout).not.toMatch(/prog\/xdp/);
    expect(tryRun(lab.client(['ss', '-Hltn'])).stdout.trim()).toBe(''); // the wire placement's upstream is gone too
    expect(tryRun(lab.server(['ss', '-Hltn'])).stdout.trim()).toBe('');
  });
});
