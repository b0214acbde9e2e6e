// A process that re-executes itself into the lab's server namespace the way
// `strata serve` does (placement/reexecIn), and whose child then hangs in
// cleanup: it ignores SIGTERM and stays busy forever. The subject of the
// test that the child still exits once its parent is gone.
//   STRATA_LAB_PREFIX=P node --import tsx test/helpers/reexec-hang.ts
import { placement, reexecIn } from '../../src/cli/netns-exec.js';

const where = placement();
if (where.reexec && where.lab !== null) {
  process.exitCode = await reexecIn(where.lab.serverNs);
} else {
  process.on('SIGTERM', () => { process.stdout.write('SIGTERM ignored\n'); });
  process.stdout.write(`child ${process.pid} ready\n`);
  setInterval(() => { /* hold */ }, 1 << 30);
}
