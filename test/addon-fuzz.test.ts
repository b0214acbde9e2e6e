// Seeded addon fuzz: test/helpers/addon-fuzz-child.ts drives every
// JS-facing function of the native addon with random arguments, in a child
// process inside a private namespace (a veth pair and a TAP of its own), so
// a crash is reported here as a failure with its seed instead of killing the
// runner. CI runs a few thousand calls; STRATA_ADDON_FUZZ_CALLS runs longer
// and STRATA_ADDON_FUZZ_SEED replays one seed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fuzzSeed } from './helpers/fuzz.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rootSkipReason } from './helpers/lab.js';
import { probeTransports, repoRoot } from '../src/link/native.js';
import { run, tryRun } from '../src/util/run.js';

const probe = probeTransports();
const skip = rootSkipReason() ?? (probe.afxdp.available && probe.tap.available ? null : `${probe.afxdp.reason ?? ''} ${probe.tap.reason ?? ''}`.trim());

/** Calls per run in CI (a few seconds); STRATA_ADDON_FUZZ_CALLS overrides. */
const DEFAULT_CALLS = 5000;

describe.skipIf(skip !== null)(`addon fuzz${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const ns = `t${process.pid % 100000}afz`;
  const pinDir = `/sys/fs/bpf/strata-${ns}`;
  beforeAll(() => {
    run(['ip', 'netns', 'add', ns]);
    run(['ip', '-n', ns, 'link', 'add', 'fz0', 'type', 'veth', 'peer', 'name', 'fz1']);
    run(['ip', '-n', ns, 'link', 'set', 'fz0', 'up']);
    run(['ip', '-n', ns, 'link', 'set', 'fz1', 'up']);
    mkdirSync(pinDir, { recursive: true });
  });
  afterAll(() => {
    tryRun(['ip', 'netns', 'del', ns]);
    rmSync(pinDir, { recursive: true, force: true });
  });

  it('Seeded addon fuzz: random arguments to every addon function end without a crash, every refusal a coded error', () => {
    const seed = fuzzSeed('STRATA_ADDON_FUZZ_SEED');
    const calls = Number(process.env.STRATA_ADDON_FUZZ_CALLS ?? DEFAULT_CALLS);
    const args = JSON.stringify({ ns, veth: 'fz0', tap: 'fztap0', pinDir, seed, calls });
    const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '--import', 'tsx', join(repoRoot, 'test/helpers/addon-fuzz-child.ts'), args],
      { cwd: repoRoot, encoding: 'utf8', timeout: 600_000, maxBuffer: 1 << 24 });
    const tag = `seed 0x${seed.toString(16)} (replay: STRATA_ADDON_FUZZ_SEED=${seed})`;
    expect({ status: r.status, signal: r.signal, tag }, r.stderr.slice(-2000)).toEqual({ status: 0, signal: null, tag });
    const lines = r.stdout.trim().split('\n');
    const summary = lines.pop()!;
    console.log(summary);
    expect(summary).toBe(`addon fuzz: ${calls} calls, seed 0x${seed.toString(16)}`);
    const { thrown } = JSON.parse(lines.pop()!) as { thrown: Record<string, number> };
    // The addon's own refusals all carry codes; the uncoded ones come from V8
    // (a method called on a foreign `this`, a class called without new) or
    // are the fuzzer's own throwing getters passing through.
    const uncoded = Object.keys(thrown).filter((k) => k.startsWith('uncoded '))
      .filter((k) => !/Illegal invocation|cannot be invoked without 'new'|: getter$/.test(k));
    expect(uncoded, tag).toEqual([]);
    expect(thrown['ArgumentTypeError:ERR_STRATA_ARG_TYPE'], tag).toBeGreaterThan(0);
    expect(thrown['ArgumentRangeError:ERR_STRATA_ARG_RANGE'], tag).toBeGreaterThan(0);
    // Nothing left attached in the namespace once the child has gone.
    expect(run(['ip', '-n', ns, '-o', 'link'])).not.toMatch(/xdp/);
  });
});
