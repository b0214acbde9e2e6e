// `strata serve` and `strata proxy` in a lab: with the lab up they re-exec
// into its server namespace, bind the lab's target address for each
// transport (kernel 10.200.0.2, tap 10.201.0.2, afxdp 10.200.0.3), and answer
// curl and wrk from the client namespace. A private lab, named to the
// commands through STRATA_LAB_PREFIX, keeps this away from the default one.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { probeTransports } from '../src/link/native.js';
import type { Lab } from '../src/lab/topo.js';

const exec = promisify(execFile);
const root = resolve(import.meta.dirname, '..');
const kinds = ['kernel', 'tap', 'afxdp'] as const;
const probe = probeTransports();
const skip = rootSkipReason();

describe.skipIf(skip !== null)(`serve and proxy in the lab on every transport${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let dir = '';
  let runner = '';
  const procs: ChildProcess[] = [];

  function cli(args: string[]): ChildProcess {
    const p = spawn(process.execPath, ['--import', 'tsx', runner, ...args], { cwd: root, env: { ...process.env, STRATA_LAB_PREFIX: lab.prefix }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    return p;
  }
  function lines(p: ChildProcess, n: number): Promise<string[]> {
    return new Promise((res, rej) => {
      let out = '', err = '';
      p.stdout!.on('data', (d) => { out += d; const l = out.split('\n').filter((x) => x.startsWith('listening ')); if (l.length >= n) res(l); });
      p.stderr!.on('data', (d) => { err += d; });
      p.on('exit', (code) => rej(new Error(`exited ${code}: ${out}${err}`)));
    });
  }
  async function stop(p: ChildProcess): Promise<number | null> {
    if (p.exitCode !== null) return p.exitCode;
    const done = new Promise<number | null>((r) => p.on('exit', (c) => r(c)));
    p.kill('SIGTERM');
    return done;
  }
  async function client(argv: string[]): Promise<string> {
    const a = lab.client(argv);
    return (await exec(a[0]!, a.slice(1), { maxBuffer: 16 * 1024 * 1024 })).stdout;
  }
  const target = (k: typeof kinds[number]): string => (k === 'kernel' ? lab.kernelAddr : k === 'tap' ? lab.tapAddr : lab.afxdpAddr);

  beforeAll(() => {
    lab = privateLab('pl');
    lab.up();
    dir = mkdtempSync(join(tmpdir(), 'strata-lab-'));
    runner = join(dir, 'run.mts');
    writeFileSync(runner, `const [mod, ...args] = process.argv.slice(2);\nconst m = await import(${JSON.stringify(`${root}/src/cli/`)} + mod + '.ts');\nprocess.exitCode = await m.main(args);\n`);
  });
  afterAll(async () => {
    for (const p of procs) await stop(p);
    lab?.down();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const k of kinds) {
    const why = k === 'kernel' ? null : probe[k].available ? null : probe[k].reason!;
    it.skipIf(why !== null)(`serve hello and echo on ${k}${why ? ` (skipped: ${why})` : ''}`, async () => {
      const hello = cli(['serve', '--transport', k, '--app', 'hello']);
      const [line] = await lines(hello, 1);
      expect(line).toBe(`listening ${target(k)}:8080 transport=${k}`);
      expect(await client(['curl', '-sS', '--max-time', '10', `http://${target(k)}:8080/`])).toBe('Hello, World!\n');
      const w = await client(['wrk', '-t1', '-c10', '-d1s', `http://${target(k)}:8080/`]);
      expect(Number(/(\d+) requests in/.exec(w)?.[1] ?? 0)).toBeGreaterThan(0);
      expect(w).not.toMatch(/Socket errors|Non-2xx/);
      expect(await stop(hello)).toBe(0);
      const echo = cli(['serve', '--transport', k, '--app', 'echo', '--port', '8081']);
      await lines(echo, 1);
      expect(await client(['curl', '-sS', '--max-time', '10', '--data-binary', `echo over ${k}`, `http://${target(k)}:8081/`])).toBe(`echo over ${k}`);
      expect(await stop(echo)).toBe(0);
    });
  }

  it('proxy with a listener on each available transport in front of a kernel upstream', async () => {
    const upstream = cli(['serve', '--transport', 'kernel', '--app', 'hello', '--port', '9000']);
    await lines(upstream, 1);
    const avail = kinds.filter((k) => k === 'kernel' || probe[k].available);
    const f = join(dir, 'lab-proxy.yaml');
    writeFileSync(f, [
      'logging: { accessLog: { enabled: false } }',
      'listeners:',
      ...avail.map((k, i) => `  - { name: l-${k}, address: ${k === 'kernel' ? '0.0.0.0' : target(k)}, port: ${8090 + i}, transport: ${k} }`),
      'clusters:', `  - name: up`, `    endpoints: [${lab.kernelAddr}:9000]`,
      'routes:', '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: all }', '    spec:',
      `      parentRefs: [${avail.map((k) => `{ name: l-${k} }`).join(', ')}]`,
      '      rules:', '        - backendRefs: [{ name: up }]', '',
    ].join('\n'));
    const proxy = cli(['proxy', '--config', f]);
    const ls = await lines(proxy, avail.length);
    for (const [i, k] of avail.entries()) {
      expect(ls).toContain(`listening ${k === 'kernel' ? '0.0.0.0' : target(k)}:${8090 + i} transport=${k}`);
      expect(await client(['curl', '-sS', '--max-time', '10', `http://${target(k)}:${8090 + i}/via-${k}`])).toBe('Hello, World!\n');
      const w = await client(['wrk', '-t1', '-c10', '-d1s', `http://${target(k)}:${8090 + i}/`]);
      expect(Number(/(\d+) requests in/.exec(w)?.[1] ?? 0)).toBeGreaterThan(0);
      expect(w).not.toMatch(/Socket errors|Non-2xx/);
    }
    expect(await stop(proxy)).toBe(0);
    expect(await stop(upstream)).toBe(0);
  });

  const noStack = probe.tap.available || probe.afxdp.available ? null : `TAP: ${probe.tap.reason}; AF_XDP: ${probe.afxdp.reason}`;
  it.skipIf(noStack !== null)(`proxy whose upstream connections run on the stack too: clusters on TAP and AF_XDP reach a kernel upstream across the veth${noStack ? ` (skipped: ${noStack})` : ''}`, async () => {
    // The upstream is node:http in the client namespace, answering with the
    // address each connection came from: the stack's own address proves the
    // proxy's upstream leg left through the stack, not the kernel.
    const up = spawn('ip', ['netns', 'exec', lab.clientNs, process.execPath, '-e',
      `require('http').createServer((q, s) => s.end(q.socket.remoteAddress + ' ' + q.url)).listen(9100, ${JSON.stringify(lab.clientAddr)}, () => console.log('up'))`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(up);
    await new Promise<void>((res, rej) => { up.stdout!.on('data', () => res()); up.on('exit', (c) => rej(new Error(`upstream exited ${c}`))); });
    const stackKinds = (['tap', 'afxdp'] as const).filter((k) => probe[k].available);
    const f = join(dir, 'lab-proxy-stack-upstream.yaml');
    writeFileSync(f, [
      'logging: { accessLog: { enabled: false } }',
      'listeners:',
      ...stackKinds.map((k, i) => `  - { name: l-${k}, address: ${target(k)}, port: ${8190 + i}, transport: ${k} }`),
      'clusters:',
      ...stackKinds.map((k) => `  - { name: up-${k}, transport: ${k}, endpoints: ["${lab.clientAddr}:9100"] }`),
      'routes:',
      ...stackKinds.flatMap((k) => [
        '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', `    metadata: { name: r-${k} }`, '    spec:',
        `      parentRefs: [{ name: l-${k} }]`, `      rules: [{ backendRefs: [{ name: up-${k} }] }]`,
      ]),
      '',
    ].join('\n'));
    const proxy = cli(['proxy', '--config', f]);
    await lines(proxy, stackKinds.length);
    for (const [i, k] of stackKinds.entries()) {
      const body = await client(['curl', '-sS', '--max-time', '10', `http://${target(k)}:${8190 + i}/over-${k}`]);
      expect(body).toBe(`${target(k)} /over-${k}`);
      const w = await client(['wrk', '-t1', '-c10', '-d1s', `http://${target(k)}:${8190 + i}/`]);
      expect(Number(/(\d+) requests in/.exec(w)?.[1] ?? 0)).toBeGreaterThan(0);
      expect(w).not.toMatch(/Socket errors|Non-2xx/);
    }
    expect(await stop(proxy)).toBe(0);
    up.kill('SIGTERM');
  });
});
