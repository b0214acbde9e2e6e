// The proxy workload of `strata bench` in a private lab: wrk through strata
// proxy (kernel, TAP, AF_XDP listeners) and nginx to the nginx hello
// upstream, on loopback and across the veth. Short bounded runs; assertions
// on counts and cleanup only.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { PROXY_POINTS, proxyWorkload, strataProxyConfig, UPSTREAM } from '../src/bench/proxy.js';
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
      expect(y.clusters[0].transport).toBeUndefined(); // the local placement's upstream leg is the kernel's loopback
      // The wire placement: the cluster reaches the upstream across the veth over the listener's own transport.
      const wire = strataProxyConfig({ addr: '10.200.0.3', port: 8080, transport }, undefined, { addr: '10.200.0.1', port: 8081, transport });
      const fw = join(dir, `p-${transport}-wire.yaml`);
      writeFileSync(fw, wire);
      const rw = checkConfig(fw);
      expect(rw.ok, rw.ok ? '' : rw.lines.join('\n')).toBe(true);
      const yw = parse(wire);
      expect(yw.clusters[0].transport).toBe(transport);
      expect(yw.clusters[0].endpoints).toEqual(['10.200.0.1:8081']);
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

  test('one row per proxy and upstream placement, in table order', () => {
    expect(rows.map((r) => r.transport)).toEqual(['kernel', 'tap', 'afxdp', 'nginx', 'kernel', 'tap', 'afxdp', 'nginx']);
    expect(rows.slice(0, 4).map((r) => r.point)).toEqual(Array(4).fill(HTTP_POINT));
    expect(PROXY_POINTS.local).toBe(HTTP_POINT);
    expect(rows.slice(4).map((r) => r.point)).toEqual(Array(4).fill(PROXY_POINTS.wire));
    for (const r of rows.slice(4)) if (!r.unavailable) expect(r.note).toMatch(new RegExp(`upstream nginx on ${lab.clientAddr.replace(/\./g, '\\.')}:8081 in ${lab.clientNs}`));
  });

  test('strata proxy on the kernel and nginx forwarded requests without errors, at both placements', () => {
    for (const [t, point] of [['kernel', PROXY_POINTS.local], ['nginx', PROXY_POINTS.local], ['kernel', PROXY_POINTS.wire], ['nginx', PROXY_POINTS.wire]] as const) {
      const r = rows.find((x) => x.transport === t && x.point === point)!;
      expect(r.unavailable, `${t}: ${r.unavailable}\n${lines.join('\n')}`).toBeUndefined();
      expect(r.metrics['req/s']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.errors!.samples[0]).toBe(0);
      expect(r.metrics['CPU/req']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.RSS!.samples[0]).toBeGreaterThan(1);
    }
  });

  test('the stack listeners either forwarded or say why not, at both placements (wire: upstream connections on the stack too)', () => {
    for (const r of rows.filter((x) => x.transport === 'tap' || x.transport === 'afxdp')) {
      if (r.unavailable !== undefined) { expect(r.unavailable.length).toBeGreaterThan(0); continue; }
      expect(r.metrics['req/s']!.samples[0]).toBeGreaterThan(0);
      expect(r.metrics.errors!.samples[0]).toBe(0);
    }
  });

  test('targets: one line per placement comparing the AF_XDP proxy with nginx', () => {
    const t = proxyWorkload.targets!(rows);
    expect(t).toHaveLength(2);
    expect(t[0]).toMatch(/AF_XDP vs nginx .*upstream on loopback/);
    expect(t[1]).toMatch(/AF_XDP vs nginx .*upstream across the veth/);
  });

  test('--upstream picks one placement and refuses anything else', async () => {
    const { placementsOption } = await import('../src/bench/proxy.js');
    expect(placementsOption({ options: new Map() })).toEqual(['local', 'wire']);
    expect(placementsOption({ options: new Map([['upstream', 'wire']]) })).toEqual(['wire']);
    expect(() => placementsOption({ options: new Map([['upstream', 'remote']]) })).toThrow(/local, wire or both/);
  });

  test('nothing is left behind: no proxy, no nginx, no XDP program, no pins', () => {
    expect(existsSync(lab.pinDir)).toBe(false);
    // A private lab's AF_XDP proxy pins under the default directory for s0: if pins are there, a live process owns them.
    const owner = existsSync(pinDirFor(lab.serverIface)) ? pinnedOwner(pinDirFor(lab.serverIface)) : null;
    if (owner !== null) expect(existsSync(`/proc/${owner}`)).toBe(true);
    expect(tryRun(lab.server(['ip', '-d', 'link', 'show', lab.serverIface])).stdout).not.toMatch(/prog\/xdp/);
    expect(tryRun(lab.server(['ss', '-Hltn'])).stdout.trim()).toBe('');
    expect(tryRun(lab.client(['ss', '-Hltn'])).stdout.trim()).toBe('');
  });
});
