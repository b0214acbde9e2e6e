// Running external commands (ip, ethtool, tcpdump …) for the lab, tests and
// benches. Synchronous on purpose: these are control-plane steps, never on a
// packet path.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { StrataError } from './errors.js';

export class CommandError extends StrataError {
  constructor(readonly argv: readonly string[], readonly status: number | null, readonly stderr: string) {
    super('ERR_STRATA_COMMAND', `command failed (${status}): ${argv.join(' ')}${stderr ? `: ${stderr.trim()}` : ''}`);
  }
}

export interface RunResult { status: number | null; stdout: string; stderr: string }

/** Runs argv; returns its output whatever the exit status. */
export function tryRun(argv: readonly string[], opts: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', ...opts });
  if (r.error) return { status: null, stdout: '', stderr: String(r.error.message) };
  return { status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** Runs argv and throws CommandError unless it exits 0; returns stdout. */
export function run(argv: readonly string[], opts: SpawnSyncOptions = {}): string {
  const r = tryRun(argv, opts);
  if (r.status !== 0) throw new CommandError(argv, r.status, r.stderr);
  return r.stdout;
}

/** argv prefixed so that it runs inside network namespace ns (root's mount namespace is kept, so bpffs pins stay visible). */
export function inNetns(ns: string | null, argv: readonly string[]): string[] {
  return ns ? ['nsenter', `--net=/run/netns/${ns}`, '--', ...argv] : [...argv];
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
