// Who owns an XDP attachment: a pid plus that process's start time, so a
// dead owner is told apart from a new process that reused its pid. The
// record lives in the program's pinned `meta` map (struct strata_meta in
// bpf/strata_shared.h); this module only reads /proc (proc(5): field 22 of
// /proc/PID/stat is the start time in clock ticks after boot).
import { readFileSync } from 'node:fs';

export interface OwnerRecord {
  /** 0: nobody detaches the program on exit (`strata xdp attach`). */
  pid: number;
  /** The owner's start time (clock ticks after boot); 0 when not recorded. */
  start: number;
}

export type OwnerState = 'none' | 'alive' | 'dead';

/** A process's start time from /proc/PID/stat, or null when there is no such process. */
export function processStart(pid: number): number | null {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'latin1'); } catch { return null; }
  // comm (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = Number(rest[22 - 3]);
  return Number.isSafeInteger(start) ? start : null;
}

/** Whether the recorded owner still runs: the pid exists and, when recorded, started when it did. */
export function ownerState(o: OwnerRecord): OwnerState {
  if (o.pid === 0) return 'none';
  const start = processStart(o.pid);
  if (start === null) return 'dead';
  return o.start === 0 || o.start === start ? 'alive' : 'dead';
}
