// The raw workload as a pluggable `strata bench` workload: maps command-line
// options onto runRaw() (src/bench/raw.ts).
import { UsageError } from '../cli/args.js';
import type { BenchContext, Workload } from './workload.js';
import { RAW_TRANSPORTS, completeChecksumsOnWire, interruptRaw, rawTargets, runRaw, type RawTransport } from './raw.js';
import os from 'node:os';

function num(ctx: BenchContext, key: string, dflt: number, min: number, max: number): number {
  const s = ctx.options.get(key);
  if (s === undefined) return dflt;
  const v = Number(s);
  if (!Number.isFinite(v) || v < min || v > max) throw new UsageError(`--${key} must be a number in [${min}, ${max}]`);
  return v;
}

export const rawWorkload: Workload = {
  name: 'raw',
  summary: 'UDP echo: TS on AF_XDP, TS on TAP, node:dgram, C on AF_XDP; pps at a fixed load and at saturation, CPU per packet',
  transports: RAW_TRANSPORTS,
  async run(ctx) {
    const transports = (ctx.transports ?? RAW_TRANSPORTS).map((t) => {
      if (!(RAW_TRANSPORTS as readonly string[]).includes(t)) throw new UsageError(`raw: unknown transport '${t}' (known: ${RAW_TRANSPORTS.join(', ')})`);
      return t as RawTransport;
    });
    const mode = ctx.options.get('mode') ?? 'event';
    if (mode !== 'event' && mode !== 'busy') throw new UsageError('--mode must be event or busy');
    const cores = os.cpus().length;
    completeChecksumsOnWire(ctx.lab);
    return runRaw({
      lab: ctx.lab,
      transports,
      duration: ctx.duration,
      rate: num(ctx, 'rate', 100_000, 1, 1e8),
      pollMode: mode,
      burst: num(ctx, 'burst', 64, 1, 256),
      flows: num(ctx, 'flows', 8, 1, 64),
      payload: num(ctx, 'payload', 64, 24, 1472),
      port: 7,
      allocPackets: num(ctx, 'alloc-packets', 10_000_000, 0, 1e9),
      // Dataplane on the last CPU, generator on the one before (the same CPU if there is only one).
      cpus: { dataplane: cores - 1, generator: Math.max(0, cores - 2) },
      // Ahead of background load by default: on a shared machine the echo
      // otherwise gets a fraction of its CPU and every version measures the
      // neighbours. Applied equally to every version and to the generator.
      nice: num(ctx, 'nice', -10, -20, 19),
      progress: ctx.progress,
    });
  },
  targets: rawTargets,
  interrupt: interruptRaw,
};
