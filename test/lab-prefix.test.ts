// Which lab a command acts on (issue 10, "Admin and CLI"): `strata topo`
// honours STRATA_LAB_PREFIX as the README says, --prefix wins over it (and
// says so), and topo, serve and proxy name the lab on stderr. Only private
// labs (unique prefixes) are made or removed here; the default 'strata' lab is
// never named, so whatever state it is in on this machine is left alone.
// Read-only commands come before destructive ones, so that code which
// ignored the variable fails on `show` before it could run `down` anywhere.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import { resolve } from 'node:path';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { closedPort } from './helpers/ports.js';

const root = resolve(import.meta.dirname, '..');
const skip = rootSkipReason();
const mine = privateLab('pfa');
const other = privateLab('pfb');
afterAll(() => { if (!skip) { mine.down(); other.down(); } });

/** bin/strata.js (dist) with the given environment on top of ours, minus any lab variables we inherited. */
function strata(env: Record<string, string>, ...args: string[]) {
  const base = { ...process.env };
  delete base.STRATA_LAB_PREFIX;
  delete base.STRATA_LAB;
  return spawnSync(process.execPath, ['bin/strata.js', ...args], { cwd: root, encoding: 'utf8', env: { ...base, ...env } });
}

describe.skipIf(skip !== null)(`strata topo and STRATA_LAB_PREFIX${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('topo ignores STRATA_LAB_PREFIX: with one private lab up and the variable naming another, show and down act on the named lab only', () => {
    mine.up();
    expect(mine.isUp()).toBe(true);
    // show picks the lab the variable names, and says which on stderr.
    const shown = strata({ STRATA_LAB_PREFIX: mine.prefix }, 'topo', 'show');
    expect(shown.stdout.split('\n')[0]).toBe(`lab ${mine.prefix}: up`);
    expect(shown.status).toBe(0);
    expect(shown.stderr).toBe(`lab: ${mine.prefix} (STRATA_LAB_PREFIX; namespaces ${mine.prefix}-client, ${mine.prefix}-server)\n`);
    expect(strata({ STRATA_LAB_PREFIX: other.prefix }, 'topo', 'show').stdout).toBe(`lab ${other.prefix}: down\n`);
    // down with the variable naming the other lab leaves ours standing.
    const down = strata({ STRATA_LAB_PREFIX: other.prefix }, 'topo', 'down');
    expect(down.status, down.stderr).toBe(0);
    expect(down.stdout).toBe(`lab down: ${other.prefix}\n`);
    expect(down.stderr).toContain(`lab: ${other.prefix} (STRATA_LAB_PREFIX;`);
    expect(mine.isUp()).toBe(true);
    // --prefix wins over the variable, and says it overrode it.
    const flag = strata({ STRATA_LAB_PREFIX: other.prefix }, 'topo', 'show', '--json', '--prefix', mine.prefix);
    expect(flag.status).toBe(0);
    expect(JSON.parse(flag.stdout).server.netns).toBe(mine.serverNs);
    expect(flag.stderr).toContain(`lab: ${mine.prefix} (--prefix, overriding STRATA_LAB_PREFIX=${other.prefix};`);
    // and down through the variable takes down the lab it names.
    expect(strata({ STRATA_LAB_PREFIX: mine.prefix }, 'topo', 'down').status).toBe(0);
    expect(existsSync(`/run/netns/${mine.serverNs}`)).toBe(false);
  });
});

describe('serve and proxy say which lab', () => {
  it('topo ignores STRATA_LAB_PREFIX: serve names the lab the variable picks (not up: it runs here), and STRATA_LAB=off says none', async () => {
    for (const env of [{ STRATA_LAB_PREFIX: other.prefix }, { STRATA_LAB: 'off' }]) {
      const port = await closedPort();
      const p = spawn(process.execPath, ['bin/strata.js', 'serve', '--transport', 'kernel', '--host', '127.0.0.1', '--port', String(port)], { cwd: root, env: { ...process.env, STRATA_LAB_PREFIX: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '', err = '';
      p.stdout.on('data', (d) => { out += d; });
      p.stderr.on('data', (d) => { err += d; });
      const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
      // Until it listens (however loaded the machine), or exits.
      await Promise.race([exited, new Promise<void>((r) => p.stdout.on('data', () => { if (out.includes('listening ')) r(); }))]);
      expect(out).toBe(`listening 127.0.0.1:${port} transport=kernel\n`);
      // One answered request: the server is in its event loop, its signal handlers set.
      const body = await new Promise<string>((r, j) => http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => { let b = ''; res.on('data', (c: Buffer) => { b += c.toString(); }); res.on('end', () => r(b)); }).on('error', j));
      expect(body).toBe('Hello, World!\n');
      p.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(err).toBe('STRATA_LAB' in env
        ? 'strata serve: lab: none (STRATA_LAB=off): running in this namespace\n'
        : `strata serve: lab: ${other.prefix} (STRATA_LAB_PREFIX; namespaces ${other.prefix}-client, ${other.prefix}-server): not up, running in this namespace\n`);
    }
  });
});

describe('serve under a supervisor', () => {
  it('serve signalled the moment it prints `listening` exits 0: its SIGTERM handler is set before the line', async () => {
    const codes: (number | null)[] = [];
    for (let i = 0; i < 5; i++) {
      const port = await closedPort();
      const p = spawn(process.execPath, ['bin/strata.js', 'serve', '--transport', 'kernel', '--host', '127.0.0.1', '--port', String(port)], { cwd: root, env: { ...process.env, STRATA_LAB: 'off' }, stdio: ['ignore', 'pipe', 'ignore'] });
      const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
      let out = '';
      // SIGTERM as soon as the line is read, as a supervisor waiting for readiness would.
      p.stdout.on('data', (d) => { out += d; if (out.includes('listening ')) p.kill('SIGTERM'); });
      codes.push(await exited);
    }
    expect(codes).toEqual([0, 0, 0, 0, 0]);
  });
});
