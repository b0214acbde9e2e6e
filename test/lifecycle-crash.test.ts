// What a supervisor's SIGKILL leaves behind, on a private lab:
//   - the re-exec'd serve child dies with its parent (PDEATHSIG), releasing
//     the TAP device / AF_XDP socket, so the next start on the same
//     transport succeeds;
//   - an AF_XDP server killed outright leaves the XDP program attached, but
//     traffic to its address goes to the kernel (the XSKMAP slot is empty)
//     and is counted as socket_gone, not redirected into a dead socket;
//   - `strata xdp status` says the recorded owner is dead.
// Every process spawned here is SIGKILLed in afterAll; the lab, its XDP
// program and pins are removed even when a test fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { stackSkipReason } from './helpers/stack-host.js';
import { repoRoot } from '../src/link/native.js';
import { XdpProgram } from '../src/xdp/program.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

let dir = '';
let runner = '';
const spawned: ChildProcess[] = [];
/** Pids of re-exec children seen, SIGKILLed in afterAll if a failed test left them running. */
const orphans = new Set<number>();

interface Serve { p: ChildProcess; listening: Promise<string>; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; err: () => string }

/** `strata serve` with lab's prefix; `direct` runs it in the server namespace itself (no re-exec). */
function serve(lab: Lab, transport: 'tap' | 'afxdp', direct = false): Serve {
  const cmd = [process.execPath, '--import', 'tsx', runner, 'serve', '--transport', transport, '--app', 'hello'];
  const argv = direct ? ['nsenter', `--net=/run/netns/${lab.serverNs}`, '--', ...cmd] : cmd;
  const env = { ...process.env, STRATA_LAB_PREFIX: lab.prefix, ...(direct ? { STRATA_IN_LAB_NETNS: '1' } : {}) };
  delete env.STRATA_LAB;
  const p = spawn(argv[0]!, argv.slice(1), { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.push(p);
  let out = '', err = '';
  p.stderr!.on('data', (d) => { err += d; });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.on('exit', (code, signal) => r({ code, signal })));
  const listening = new Promise<string>((resolve, reject) => {
    p.stdout!.on('data', (d) => {
      out += d;
      const m = /^listening .*$/m.exec(out);
      if (m) resolve(m[0]);
    });
    void exit.then(({ code, signal }) => reject(new Error(`serve exited before listening (${code ?? signal}): ${err}`)));
  });
  return { p, listening, exit, err: () => err };
}

/** /proc/PID/stat fields after the command name: [state, ppid, ...]. */
function stat(pid: number): string[] | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch { return null; }
}

const environ = (pid: number): string => { try { return readFileSync(`/proc/${pid}/environ`, 'latin1'); } catch { return ''; } };

/** pid's children that are strata re-exec children (tsx's esbuild service is a child too). */
function reexecChildrenOf(pid: number): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)
    .filter((c) => stat(c)?.[1] === String(pid) && environ(c).split('\0').includes('STRATA_IN_LAB_NETNS=1'));
}

/** Running (not gone, not a zombie waiting for a reaper). */
const running = (pid: number): boolean => { const s = stat(pid); return s !== null && s[0] !== 'Z' && s[0] !== 'X'; };

async function until(cond: () => boolean, tries = 100, stepMs = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

async function stop(s: Serve): Promise<void> {
  s.p.kill('SIGTERM');
  await s.exit;
}

/** The server namespace kernel's IP InReceives (/proc/net/snmp): IP datagrams the kernel saw. */
function kernelInReceives(lab: Lab): number {
  const snmp = run(['nsenter', `--net=/run/netns/${lab.serverNs}`, '--', 'cat', '/proc/net/snmp']);
  const ip = snmp.split('\n').filter((l) => l.startsWith('Ip:'));
  const names = ip[0]!.split(/\s+/), vals = ip[1]!.split(/\s+/);
  return Number(vals[names.indexOf('InReceives')]);
}

function xdpStatus(lab: Lab, json: boolean): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', runner, 'xdp', 'status', '--iface', lab.serverIface, '--netns', lab.serverNs, ...(json ? ['--json'] : [])], { cwd: repoRoot, encoding: 'utf8' });
  return { status: r.status, out: r.stdout };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-lc-'));
  runner = join(dir, 'run.mts');
  writeFileSync(runner, `const m = await import(${JSON.stringify(`${repoRoot}/src/cli/main.ts`)});\nprocess.exitCode = await m.run(process.argv.slice(2));\n`);
});
afterAll(() => {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  for (const pid of orphans) if (running(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  rmSync(dir, { recursive: true, force: true });
});

for (const transport of ['tap', 'afxdp'] as const) {
  const skip = stackSkipReason(transport);
  describe.skipIf(skip !== null)(`serve over ${transport} when its parent is SIGKILLed${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let lab: Lab;
    beforeAll(() => { lab = privateLab(`lc${transport.slice(0, 2)}`); lab.up(); });
    afterAll(() => {
      for (const pid of orphans) if (running(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      if (transport === 'afxdp') try { XdpProgram.detachIface({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir }); } catch { /* lab.down removes it too */ }
      lab?.down();
    });

    it(`Re-exec child outlives its parent: after SIGKILL of the parent the ${transport} child is gone and the next start succeeds`, async () => {
      const first = serve(lab, transport);
      expect(await first.listening).toMatch(new RegExp(`transport=${transport}$`));
      const kids = reexecChildrenOf(first.p.pid!);
      expect(kids.length).toBe(1);   // setpriv and nsenter exec, they do not fork: node is the direct child
      const child = kids[0]!;
      orphans.add(child);

      first.p.kill('SIGKILL');
      expect((await first.exit).signal).toBe('SIGKILL');
      const gone = await until(() => !running(child));
      expect(gone, `re-exec child ${child} still running after its parent was SIGKILLed`).toBe(true);

      // The transport was released: a second start on it works (no EBUSY).
      const second = serve(lab, transport);
      try {
        expect(await second.listening).toMatch(new RegExp(`transport=${transport}$`));
        for (const c of reexecChildrenOf(second.p.pid!)) orphans.add(c);
      } finally {
        await stop(second);
      }
      expect((await second.exit).code).toBe(0);
    });
  });
}

const skipRoot = rootSkipReason();
describe.skipIf(skipRoot !== null)(`the re-exec child's own guards${skipRoot ? ` (skipped: ${skipRoot})` : ''}`, () => {
  let lab: Lab;
  beforeAll(() => { lab = privateLab('lcgd'); lab.up(); });
  afterAll(() => {
    for (const pid of orphans) if (running(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    lab?.down();
  });
  const hang = join(repoRoot, 'test/helpers/reexec-hang.ts');

  it('Re-exec child outlives its parent: a child whose cleanup hangs (SIGTERM ignored) still exits once the parent is SIGKILLed', async () => {
    const env = { ...process.env, STRATA_LAB_PREFIX: lab.prefix };
    delete env.STRATA_LAB;
    const p = spawn(process.execPath, ['--import', 'tsx', hang], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    spawned.push(p);
    let out = '';
    p.stdout!.on('data', (d) => { out += d; });
    expect(await until(() => /child \d+ ready/.test(out), 200)).toBe(true);
    const child = Number(/child (\d+) ready/.exec(out)![1]);
    orphans.add(child);
    expect(stat(child)![1]).toBe(String(p.pid));   // the child is the parent's direct child, in the lab's namespace
    p.kill('SIGKILL');
    // PDEATHSIG reached it (it printed, through the inherited pipe), and the grace deadline ended it anyway.
    expect(await until(() => out.includes('SIGTERM ignored'))).toBe(true);
    const gone = await until(() => !running(child), 200);
    expect(gone, `child ${child} ignoring SIGTERM still running after its parent was SIGKILLed`).toBe(true);
  });

  it('Re-exec child outlives its parent: a child whose parent died before it started exits at once', () => {
    // STRATA_REEXEC_PARENT names a parent that is not ours: the parent died before setpriv's prctl.
    const r = spawnSync(process.execPath, ['--import', 'tsx', hang], {
      cwd: repoRoot, encoding: 'utf8', timeout: 60_000,
      env: { ...process.env, STRATA_LAB_PREFIX: lab.prefix, STRATA_IN_LAB_NETNS: '1', STRATA_REEXEC_PARENT: '999999999' },
    });
    expect(r.stdout).not.toContain('ready');
    expect(r.stderr).toContain('parent 999999999 exited before this child started');
    expect(r.status).toBe(143);
  });
});

const skipProxy = stackSkipReason('afxdp') === null || stackSkipReason('tap') === null ? null : stackSkipReason('tap');
describe.skipIf(skipProxy !== null)(`proxy with a request in flight when its parent is SIGKILLed${skipProxy ? ` (skipped: ${skipProxy})` : ''}`, () => {
  let lab: Lab;
  beforeAll(() => { lab = privateLab('lcpx'); lab.up(); });
  afterAll(() => {
    for (const pid of orphans) if (running(pid)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    try { XdpProgram.detachIface({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir }); } catch { /* lab.down removes it too */ }
    lab?.down();
  });

  function proxy(config: string): Serve {
    const env = { ...process.env, STRATA_LAB_PREFIX: lab.prefix };
    delete env.STRATA_LAB;
    const p = spawn(process.execPath, ['--import', 'tsx', runner, 'proxy', '--config', config], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    spawned.push(p);
    let out = '', err = '';
    p.stderr!.on('data', (d) => { err += d; });
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.on('exit', (code, signal) => r({ code, signal })));
    const listening = new Promise<string>((resolve, reject) => {
      p.stdout!.on('data', (d) => { out += d; const m = /^listening .*$/m.exec(out); if (m) resolve(m[0]); });
      void exit.then(({ code, signal }) => reject(new Error(`proxy exited before listening (${code ?? signal}): ${err}`)));
    });
    return { p, listening, exit, err: () => err };
  }

  it('Re-exec child outlives its parent: a proxy child with a request in flight exits after its parent is SIGKILLed, and the next start succeeds', async () => {
    // An upstream that takes requests and never answers: the child's drain must not wait the 120 s for it.
    const up = spawn('nsenter', [`--net=/run/netns/${lab.serverNs}`, '--', process.execPath, '-e',
      `require('node:http').createServer(() => process.stdout.write('hit\\n')).listen(9001, '${lab.kernelAddr}', () => process.stdout.write('up\\n'))`]);
    spawned.push(up);
    let upOut = '';
    up.stdout!.on('data', (d) => { upOut += d; });
    expect(await until(() => upOut.includes('up'))).toBe(true);
    const cfg = join(dir, 'hung.yaml');
    writeFileSync(cfg, [
      'logging: { accessLog: { enabled: false } }', 'drain: { timeout: 120s }',
      'listeners:', '  - name: web', '    port: 8080',
      'clusters:', '  - name: a', `    endpoints: [${lab.kernelAddr}:9001]`,
      'routes:', '  - apiVersion: gateway.networking.k8s.io/v1', '    kind: HTTPRoute', '    metadata: { name: app }', '    spec:',
      '      parentRefs: [{ name: web }]', '      rules:', '        - backendRefs: [{ name: a }]', '',
    ].join('\n'));

    const first = proxy(cfg);
    const line = await first.listening;
    const target = /^listening (\S+):8080/.exec(line)![1]!;
    const kids = reexecChildrenOf(first.p.pid!);
    expect(kids.length).toBe(1);
    const child = kids[0]!;
    orphans.add(child);
    const curl = spawn('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', 'curl', '-s', '--max-time', '60', `http://${target}:8080/slow`]);
    spawned.push(curl);
    expect(await until(() => upOut.includes('hit'))).toBe(true);   // the request is in flight

    first.p.kill('SIGKILL');
    await first.exit;
    const gone = await until(() => !running(child), 200);
    expect(gone, `proxy child ${child} still running (draining) after its parent was SIGKILLed`).toBe(true);

    const second = proxy(cfg);
    try {
      expect(await second.listening).toContain(':8080');
      for (const c of reexecChildrenOf(second.p.pid!)) orphans.add(c);
    } finally {
      await stop(second);
      curl.kill('SIGKILL');
      up.kill('SIGKILL');
    }
    expect((await second.exit).code).toBe(0);
  });
});

const skipXdp = stackSkipReason('afxdp');
describe.skipIf(skipXdp !== null)(`an AF_XDP server killed outright${skipXdp ? ` (skipped: ${skipXdp})` : ''}`, () => {
  let lab: Lab;
  beforeAll(() => { lab = privateLab('lcdead'); lab.up(); });
  afterAll(() => {
    try { XdpProgram.detachIface({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir }); } catch { /* lab.down removes it too */ }
    lab?.down();
  });

  /** Starts serve over AF_XDP in the server namespace and SIGKILLs it: the program and pins stay, the socket is closed. */
  async function killedServer(): Promise<void> {
    const s = serve(lab, 'afxdp', true);
    await s.listening;
    s.p.kill('SIGKILL');   // nsenter execs node: this is the server itself
    await s.exit;
  }

  it('Dead AF_XDP socket swallows traffic: after SIGKILL, traffic to its address goes to the kernel and is counted as socket_gone', async () => {
    await killedServer();
    const prog = XdpProgram.open({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir });
    const before = prog.counters();
    expect(prog.steering()).toEqual([{ addr: lab.afxdpAddr }]);   // the dead run's steering is still there
    // A client that still has the address's MAC cached sends IP straight away.
    const mac = JSON.parse(run(['ip', '-n', lab.serverNs, '-j', 'link', 'show', lab.serverIface]))[0].address as string;
    run(lab.client(['ip', 'neigh', 'replace', lab.afxdpAddr, 'lladdr', mac, 'dev', lab.clientIface, 'nud', 'permanent']));
    const seen = kernelInReceives(lab);
    spawnSync('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', 'ping', '-c', '5', '-i', '0.2', '-W', '1', lab.afxdpAddr]);
    const after = prog.counters();
    prog.detachQuietly();   // done with the dead run's program (afterAll would remove it too)
    expect(after.socket_gone.packets - before.socket_gone.packets).toBeGreaterThanOrEqual(5);
    expect(after.redirected.packets - before.redirected.packets).toBe(0);
    expect(kernelInReceives(lab) - seen).toBeGreaterThanOrEqual(5);   // the kernel saw them: not dropped in a dead socket
  });

  it('xdp status says when the attached program\'s owner is dead: pid and (dead), in text and --json', async () => {
    const s = serve(lab, 'afxdp', true);
    await s.listening;
    const pid = s.p.pid!;
    const live = JSON.parse(xdpStatus(lab, true).out);
    expect(live.owner).toBe(pid);
    expect(live.ownerState).toBe('alive');
    expect(live.ownerStart).toBeGreaterThan(0);
    expect(xdpStatus(lab, false).out).toContain(`owner: pid ${pid} (alive)`);

    s.p.kill('SIGKILL');
    await s.exit;
    const dead = JSON.parse(xdpStatus(lab, true).out);
    expect(dead.attached).toBe(true);
    expect(dead.owner).toBe(pid);
    expect(dead.ownerState).toBe('dead');
    expect(xdpStatus(lab, false).out).toContain(`owner: pid ${pid} (dead`);
  });
});
