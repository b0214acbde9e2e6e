// Private labs for tests: a unique prefix per call, always torn down.
import { Lab } from '../../src/lab/topo.js';
import { isRoot } from '../../src/util/run.js';

let seq = 0;
/** A lab with a unique prefix (namespaces `${prefix}-client/-server`). */
export function privateLab(tag: string, queues = 1): Lab {
  const prefix = `t${process.pid % 100000}${tag}${seq++}`.toLowerCase().slice(0, 20);
  return new Lab({ prefix, queues });
}

/** Why root-only tests cannot run here, or null when they can. */
export function rootSkipReason(): string | null {
  if (!isRoot()) return 'needs root (network namespaces)';
  return null;
}
