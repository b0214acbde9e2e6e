// Seeds for the suite's fuzzers: the one an environment variable names (to
// replay a printed failure), else a fresh random 32-bit seed.
import { randomInt } from 'node:crypto';

export function fuzzSeed(env = 'STRATA_FUZZ_SEED'): number {
  const v = process.env[env];
  return v !== undefined && v !== '' ? Number(v) >>> 0 : randomInt(2 ** 32);
}
