// The proxy workload of `strata bench` in a private lab: wrk through strata
// proxy (kernel, TAP, AF_XDP listeners) and nginx to the nginx hello
// upstream. Short bounded runs; assertions on counts and cleanup only.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { proxyWorkload, strataProxyConfig, UPSTREAM } from '../src/bench/proxy.js';
import { HTTP_POINT } from '../src/bench/http.js';
import { nginxUnavailable, writeProxyConf, writeUpstreamConf } from '../src/bench/nginx.js';
import { wrkAvailable } from '../src/bench/wrk.js';
import { checkConfig } from '../src/config/index.js';
import { pinDirFor, pinnedOwner } from '../src/xdp/program.js';
import { tryRun } from '../src/util/run.js';
import type { ResultRow } from '../src/report/results.js';

describe('generated configs', () => {
  let dir = '';
  beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'strata-bench-proxy-test-')); });
  afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

  test('the strata proxy config passes `strata proxy --check` and names the listener transport and the upstream', () => {
    for (const transport of ['kernel', 'tap', 'afxdp'] as const) {
      const text = strataProxyConfig({ addr: '10.200.0.3', port: 8080, transport });
      const f = join(dir, `p-${transport}.yaml`);
      writeFileSync(f, text);
      const r = checkConfig(f);
      expect(r.ok, r.ok ? '' : r.lines.join('\n')).toBe(true);
      const y = parse(text);
      expect(y.listeners[0].transport).toBe(transport);
      expect(y.clusters[0].endpoints).toEqual([`${UPSTREAM.addr}:${UPSTREAM.port}`]);
    }
  });

  test.skipIf(nginxUnavailable() !== null)('the nginx configs pass nginx -t (one worker, upstream keepalive, access_log off)', () => {
    const up = writeUpstreamConf(join(dir, 'up'), { addr: '127.0.0.1', port: 18081 });
    const px = writeProxyConf(join(dir, 'px'), { listen: { addr: '127.0.0.1', port: 18080 }, upstream: { addr: '127.0.0.1', port: 18081 } });
    for (const [conf, d] of [[up, join(dir, 'up')], [px, join(dir, 'px')]] as const) {
      const r = tryRun(['nginx', '-t', '-q', '-p', d, '-e', join(d, 'error.log'), '-c', conf]);
      expect(r.status, r.stderr).toBe(0);
    }
    const text = readFileSync(px, 'utf8');
    expect(text).toMatch(/worker_processes 1;/);
    expect(text).toMatch(/keepalive 64;/);
    expect(text).toMatch(/access_log off;/);
  });
});

const skip = rootSkipReason() ?? wrkAvailable() ?? nginxUnavailable();
const lab = privateLab('bprx');

describe.skipIf(skip !== null)('proxy workload in a private lab', () => {
  let rows: ResultRow[] = [];
  const lines: string[] = [];
  beforeAll(async () => {
    lab.up();
    rows = await proxyWorkload.run({ lab, quick: true, duration: 1, transports: null, options: new Map(), progress: (l) => { lines.push(l); } });
  }, 300_000);
  afterAll(() => { lab.down(); });

  test('one row per proxy, in table order', () => {
    expect(rows.map((r) => r.transport)).toEqual(['kernel', 'tap', 'afxdp', 'nginx']);
    for (const r of rows) expect(r.point).toBe(HTTP_POINT);
  });

  test('strata proxy on the kernel and nginx forwarded requests without errors', () => {
    for (const t of ['kernel', 'nginx']) {
      const r = rows.find((x) => x.transport === t)!;
      expect(r.unavailable, `${t}: ${r.unavailable}\n${lines.join('\n')}`).toBeUndefined();
      expect(r.metrics['req/s']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.errors!.samples[0]).toBe(0);
      expect(r.metrics['CPU/req']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.RSS!.samples[0]).toBeGreaterThan(1);
    }
  });

  test('the stack listeners either forwarded or say why not', () => {
    for (const t of ['tap', 'afxdp']) {
      const r = rows.find((x) => x.transport === t)!;
      if (r.unavailable !== undefined) { expect(r.unavailable.length).toBeGreaterThan(0); continue; }
      expect(r.metrics['req/s']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.errors!.samples[0]).toBe(0);
    }
  });

  test('targets: one line comparing the AF_XDP proxy with nginx', () => {
    const t = proxyWorkload.targets!(rows);
    expect(t).toHaveLength(1);
    expect(t[0]).toMatch(/AF_XDP vs nginx/);
  });

  test('nothing is left behind: no proxy, no nginx, no XDP program, no pins', () => {
    expect(existsSync(lab.pinDir)).toBe(false);
    // A private lab's AF_XDP proxy pins under the default directory for s0: if pins are there, a live process owns them.
    const owner = existsSync(pinDirFor(lab.serverIface)) ? pinnedOwner(pinDirFor(lab.serverIface)) : null;
    if (owner !== null) expect(existsSync(`/proc/${owner}`)).toBe(true);
    expect(tryRun(lab.server(['ip', '-d', 'link', 'show', lab.serverIface])).stdout).not.toMatch(/prog\/xdp/);
    expect(tryRun(lab.server(['ss', '-Hltn'])).stdout.trim()).toBe('');
  });
});
