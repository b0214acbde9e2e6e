// The line serve and proxy print on stderr to say which lab they run in (or
// that they run outside any), so STRATA_LAB_PREFIX and STRATA_LAB=off are
// never acted on silently. The lab itself is chosen by chooseLab().
import { chooseLab, labLine, type Lab } from '../lab/topo.js';

/** The notice for a placement, or null in a child re-executed into the lab (its parent said it). */
export function labNotice(where: { lab: Lab | null; reexec: boolean }, env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.STRATA_IN_LAB_NETNS === '1') return null;
  if (env.STRATA_LAB === 'off') return 'lab: none (STRATA_LAB=off): running in this namespace';
  const line = labLine(chooseLab(undefined, env));
  if (where.lab === null) return `${line}: not up, running in this namespace`;
  return `${line}: ${where.reexec ? 're-running in' : 'running in'} ${where.lab.serverNs}`;
}
