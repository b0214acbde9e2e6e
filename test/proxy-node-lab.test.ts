// The node proxy in a private lab on its default transport (`auto`: AF_XDP
// here when the host offers it): the choice is logged with its reason, the
// XDP program is attached while it runs and stays attached across a SIGHUP
// that switches a route under a wrk run from the client namespace (zero
// failed requests), and after SIGTERM — and, in a second run, SIGINT — no
// XDP program and no bpffs pin is left behind.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { probeTransports } from '../src/link/native.js';
import type { Lab } from '../src/lab/topo.js';

const exec = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const skip = rootSkipReason();
const probe = probeTransports();
const expected = probe.afxdp.available ? 'afxdp' : probe.tap.available ? 'tap' : 'kernel';

interface Proc { p: ChildProcess; out: () => string; events: Record<string, unknown>[]; exit: Promise<number | null> }

describe.skipIf(skip !== null)(`node proxy in a lab on auto (${expected})${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let dir = '';
  let runner = '';
  const procs: ChildProcess[] = [];

  function spawnTracked(argv: string[], env: NodeJS.ProcessEnv = {}): Proc {
    const p = spawn(argv[0]!, argv.slice(1), { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    let out = '', partial = '';
    const events: Record<string, unknown>[] = [];
    p.stdout!.on('data', (d) => { out += d; });
    p.stderr!.on('data', (d) => {
      partial += d;
      const ls = partial.split('\n');
      partial = ls.pop()!;
      for (const l of ls) { try { events.push(JSON.parse(l) as Record<string, unknown>); } catch { out += `${l}\n`; } }
    });
    return { p, out: () => out, events, exit: new Promise((r) => p.on('exit', (c) => r(c))) };
  }
  async function until(pred: () => boolean, what: string, p: Proc): Promise<void> {
    for (let i = 0; i < 1500 && !pred(); i++) {
      if (p.p.exitCode !== null) throw new Error(`exited ${p.p.exitCode} waiting for ${what}: ${p.out()} ${JSON.stringify(p.events)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    if (!pred()) throw new Error(`timed out waiting for ${what}`);
  }
  const proxy = (f: string): Proc => spawnTracked([process.execPath, '--import', 'tsx', runner, 'proxy', '--config', f], { STRATA_LAB_PREFIX: lab.prefix });
  /** A kernel HTTP upstream in the server namespace that answers `name path` and prints one line per request. */
  const upstream = (name: string, port: number): Proc => spawnTracked(lab.server([process.execPath, join(dir, 'up.mjs'), name, String(port), lab.kernelAddr]));
  async function client(argv: string[]): Promise<string> {
    const a = lab.client(argv);
    return (await exec(a[0]!, a.slice(1), { maxBuffer: 16 * 1024 * 1024 })).stdout;
  }
  async function xdpOnS0(): Promise<boolean> {
    const a = lab.server(['ip', '-d', 'link', 'show', 'dev', lab.serverIface]);
    return /\bxdp/.test((await exec(a[0]!, a.slice(1))).stdout);
  }
  const cfg = (cluster: string): string => [
    'logging: { accessLog: { enabled: false } }',
    'admin: { port: 9901 }',
    'listeners:', '  - name: web', '    port: 8080',
    'clusters:', '  - name: a', `    endpoints: [${lab.kernelAddr}:9001]`, '  - name: b', `    endpoints: [${lab.kernelAddr}:9002]`,
    'routes:', '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: app }', '    spec:',
    '      parentRefs: [{ name: web }]', '      rules:', `        - backendRefs: [{ name: ${cluster} }]`, '',
  ].join('\n');
  const target = (): string => (expected === 'afxdp' ? lab.afxdpAddr : expected === 'tap' ? lab.tapAddr : lab.kernelAddr);

  beforeAll(() => {
    lab = privateLab('np');
    lab.up();
    dir = mkdtempSync(join(tmpdir(), 'strata-nplab-'));
    runner = join(dir, 'run.mts');
    writeFileSync(runner, `const m = await import(${JSON.stringify(`${root}/src/cli/main.ts`)});\nprocess.exitCode = await m.run(process.argv.slice(2));\n`);
    writeFileSync(join(dir, 'up.mjs'), [
      "import * as http from 'node:http';",
      'const [name, port, host] = process.argv.slice(2);',
      "const s = http.createServer((q, r) => { process.stdout.write('hit\\n'); r.end(`${name} ${q.url}`); });",
      's.keepAliveTimeout = 60000;',
      "s.listen(Number(port), host, () => process.stdout.write('up\\n'));",
      "process.on('SIGTERM', () => process.exit(0));",
    ].join('\n'));
  });
  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    lab?.down();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SIGHUP switches the route under wrk with zero failures; SIGTERM and SIGINT leave no XDP program or pin', async () => {
    const a = upstream('A', 9001);
    const b = upstream('B', 9002);
    await until(() => a.out().includes('up') && b.out().includes('up'), 'upstreams', a);
    const hits = (u: Proc): number => u.out().split('\n').filter((l) => l === 'hit').length;
    const f = join(dir, 'np.yaml');
    writeFileSync(f, cfg('a'));

    const pr = proxy(f);
    await until(() => pr.out().includes('listening '), 'listening', pr);
    expect(pr.out()).toContain(`listening ${target()}:8080 transport=${expected}`);
    const chosen = pr.events.find((e) => e.msg === 'transport chosen')!;
    expect(chosen).toMatchObject({ listener: 'web', transport: expected });
    if (expected !== 'afxdp') expect((chosen.skipped as { kind: string }[])[0]).toMatchObject({ kind: 'afxdp' });
    if (expected === 'afxdp') {
      expect(await xdpOnS0()).toBe(true);
      expect(existsSync(lab.pinDir)).toBe(true);
    }
    expect(await client(['curl', '-sS', '--max-time', '10', `http://${target()}:8080/one`])).toBe('A /one');
    // The admin listener (kernel TCP on the server side's loopback) exposes the stack's counters next to the proxy's.
    const m = lab.server(['curl', '-sS', '--max-time', '10', 'http://127.0.0.1:9901/metrics']);
    const metrics = (await exec(m[0]!, m.slice(1))).stdout;
    expect(metrics).toMatch(/^strata_proxy_requests_total\{listener="web"\} 1$/m);
    if (expected !== 'kernel') expect(metrics).toMatch(new RegExp(`^strata_stack_drops_total\\{transport="${expected}",reason="[a-z_]+"\\} \\d+$`, 'm'));
    if (expected !== 'kernel') {
      // TCP's and the link's counters: one curl is one passive open, segments both ways, frames both ways.
      const n = (re: RegExp): number => Number(re.exec(metrics)?.[1] ?? NaN);
      const lbl = `transport="${expected}"`;
      expect(n(new RegExp(`^strata_tcp_passive_opens_total\\{${lbl}\\} (\\d+)$`, 'm'))).toBeGreaterThanOrEqual(1);
      expect(n(new RegExp(`^strata_tcp_segments_received_total\\{${lbl}\\} (\\d+)$`, 'm'))).toBeGreaterThanOrEqual(3);
      expect(n(new RegExp(`^strata_tcp_segments_sent_total\\{${lbl}\\} (\\d+)$`, 'm'))).toBeGreaterThanOrEqual(2);
      expect(n(new RegExp(`^strata_tcp_connections\\{${lbl}\\} (\\d+)$`, 'm'))).toBeGreaterThanOrEqual(0);
      expect(metrics).toMatch(new RegExp(`^strata_tcp_drops_total\\{${lbl},reason="bad_checksum"\\} 0$`, 'm'));
      expect(n(new RegExp(`^strata_link_rx_packets_total\\{${lbl}\\} (\\d+)$`, 'm'))).toBeGreaterThanOrEqual(3);
      expect(n(new RegExp(`^strata_link_tx_packets_total\\{${lbl}\\} (\\d+)$`, 'm'))).toBeGreaterThanOrEqual(2);
    }
    // The XDP layer: the requests above were steered into the socket, and counted.
    if (expected === 'afxdp') expect(Number(/^strata_xdp_packets_total\{reason="redirected"\} (\d+)$/m.exec(metrics)?.[1] ?? 0)).toBeGreaterThan(0);

    const wrk = client(['wrk', '-t1', '-c10', '-d4s', `http://${target()}:8080/w`]);
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(f, cfg('b'));
    const mark = pr.events.length;
    pr.p.kill('SIGHUP');
    await until(() => pr.events.slice(mark).some((e) => e.msg === 'reload ok' || e.msg === 'reload failed'), 'reload', pr);
    expect(pr.events.slice(mark).find((e) => e.msg === 'reload ok')).toMatchObject({ generation: 2, kept: ['web'] });
    const w = await wrk;
    expect(Number(/(\d+) requests in/.exec(w)?.[1] ?? 0)).toBeGreaterThan(50);
    expect(w).not.toMatch(/Non-2xx|Socket errors/);
    expect(hits(a)).toBeGreaterThan(10);
    expect(hits(b)).toBeGreaterThan(10);
    expect(await client(['curl', '-sS', '--max-time', '10', `http://${target()}:8080/two`])).toBe('B /two');
    if (expected === 'afxdp') expect(await xdpOnS0()).toBe(true);

    pr.p.kill('SIGTERM');
    expect(await pr.exit).toBe(0);
    expect(pr.events.map((e) => e.msg)).toEqual(expect.arrayContaining(['drain start', 'transport closed', 'drain end']));
    expect(await xdpOnS0()).toBe(false);
    expect(existsSync(lab.pinDir)).toBe(false);

    // Again, stopped with SIGINT this time.
    const pr2 = proxy(f);
    await until(() => pr2.out().includes('listening '), 'listening', pr2);
    expect(await client(['curl', '-sS', '--max-time', '10', `http://${target()}:8080/three`])).toBe('B /three');
    pr2.p.kill('SIGINT');
    expect(await pr2.exit).toBe(0);
    expect(pr2.events.find((e) => e.msg === 'drain start')).toMatchObject({ signal: 'SIGINT' });
    expect(await xdpOnS0()).toBe(false);
    expect(existsSync(lab.pinDir)).toBe(false);

    // A reload that moves the listener off AF_XDP detaches the program while the proxy keeps running.
    if (expected === 'afxdp') {
      const pr3 = proxy(f);
      await until(() => pr3.out().includes('listening '), 'listening', pr3);
      expect(await xdpOnS0()).toBe(true);
      writeFileSync(f, cfg('b').replace('    port: 8080', '    port: 8080\n    transport: kernel'));
      const m3 = pr3.events.length;
      pr3.p.kill('SIGHUP');
      await until(() => pr3.events.slice(m3).some((e) => e.msg === 'transport closed'), 'transport closed', pr3);
      expect(pr3.events.slice(m3).find((e) => e.msg === 'reload ok')).toMatchObject({ replaced: ['web'] });
      expect(pr3.events.slice(m3).find((e) => e.msg === 'transport closed')).toMatchObject({ transport: 'afxdp', reason: 'unused after reload' });
      expect(await xdpOnS0()).toBe(false);
      expect(existsSync(lab.pinDir)).toBe(false);
      expect(await client(['curl', '-sS', '--max-time', '10', `http://${lab.kernelAddr}:8080/four`])).toBe('B /four');
      pr3.p.kill('SIGTERM');
      expect(await pr3.exit).toBe(0);
    }

    a.p.kill('SIGTERM');
    b.p.kill('SIGTERM');
  }, 60_000);
});
