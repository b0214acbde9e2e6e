// strata proxy --config F [--check]
//
// --check validates the file (TLS files included) and prints every issue as
// file:line: field: message, starting nothing. Otherwise the node proxy
// (src/proxy-runtime/node-proxy.ts) starts: one HTTP server per listener on
// its transport (`auto`: AF_XDP, else TAP, else the kernel, with the reason
// logged), routes, clusters, TLS and L7 policy from the file, the admin
// listener when configured; it prints one line
// `listening <addr>:<port> transport=<t>` per listener once all are ready,
// writes its own log as JSON lines (logging.level/format/path), reloads on
// SIGHUP without dropping connections and drains on SIGTERM/SIGINT, then
// exits 0. On the lab's server side by default when the lab is up.
import { parseArgs, UsageError } from './args.js';
import { labNotice } from './lab-notice.js';
import { placement, reexecIn } from './netns-exec.js';
import { StrataError, UnavailableError } from '../util/errors.js';

const USAGE = 'usage: strata proxy --config FILE [--check]';

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { booleans: ['check', 'help'], strings: ['config'] });
  if (a.flags.has('help')) { process.stdout.write(`${USAGE}\n`); return 0; }
  const file = a.values.get('config');
  if (file === undefined) throw new UsageError(`--config is required\n${USAGE}`);
  if (a.positionals.length > 0) throw new UsageError(`unexpected argument '${a.positionals[0]}'\n${USAGE}`);
  const config = await import('../config/index.js');

  const check = config.checkConfig(file);
  if (a.flags.has('check')) {
    if (check.ok) { process.stdout.write(`${file}: ok\n`); return 0; }
    for (const l of check.lines) process.stderr.write(`${l}\n`);
    process.stderr.write(`${file}: ${check.errors.length} error${check.errors.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  if (!check.ok) {
    for (const l of check.lines) process.stderr.write(`${l}\n`);
    return 1;
  }
  const where = placement();
  const notice = labNotice(where);
  if (notice !== null) process.stderr.write(`strata proxy: ${notice}\n`);
  if (where.reexec && where.lab !== null) return reexecIn(where.lab.serverNs);

  const { NodeProxy } = await import('../proxy-runtime/node-proxy.js');
  const np = new NodeProxy({ file, lab: where.lab });
  // Signals that arrive while starting are honoured once we are up.
  const early: NodeJS.Signals[] = [];
  const hold = (s: NodeJS.Signals): void => { early.push(s); };
  for (const s of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.on(s, hold);
  try {
    await np.start();
  } catch (e) {
    for (const s of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.off(s, hold);
    np.log.error('start failed', { error: (e as Error).message, ...(e instanceof StrataError ? { code: e.code } : {}) });
    await np.log.close();
    if (e instanceof UnavailableError) { process.stderr.write(`strata proxy: ${e.message}\n`); return 3; }
    // Our errors and the system's (a port in use, a missing device) are one line; anything else is a bug: keep its stack.
    if (e instanceof StrataError || typeof (e as NodeJS.ErrnoException).code === 'string') { process.stderr.write(`strata proxy: ${(e as Error).message}\n`); return 1; }
    throw e;
  }
  const done = np.run();
  for (const s of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.off(s, hold);
  for (const s of early) process.kill(process.pid, s);
  return done;
}
