// strata top: a live view of the busiest flows, from the admin listener's
// /top. Every interval it fetches a snapshot, works out each flow's rate from
// the previous snapshot (same key), and redraws a table in place with ANSI
// (alternate screen, cursor home, clear to end), restoring the terminal on
// exit. --once prints one snapshot as a plain table (or --json) and exits.
//
//   strata top [--admin host:port] [--interval S] [--once] [--n N] [--by bytes|packets] [--json]
import type { TopFlow, TopSnapshot } from '../flows/top.js';
import { humanBytes } from '../flows/format.js';
import { parseArgs, UsageError } from './args.js';
import { AdminUnreachableError, DEFAULT_ADMIN, adminGet } from './flows.js';

const USAGE = 'usage: strata top [--admin host:port] [--interval S] [--once] [--n N] [--by bytes|packets] [--json]\n';

async function fetchTop(admin: string, n: number, by: string): Promise<TopSnapshot> {
  const res = await adminGet(admin, `/top?n=${n}&by=${by}`);
  const parts: Buffer[] = [];
  for await (const c of res) parts.push(c as Buffer);
  const body = Buffer.concat(parts).toString('utf8');
  if (res.statusCode !== 200) throw new AdminUnreachableError(admin, `/top answered ${res.statusCode}: ${body.trim()}`);
  return JSON.parse(body) as TopSnapshot;
}

interface Rate { bps: number | null; pps: number | null }

function rateStr(v: number | null, unit: string): string {
  if (v === null) return '-';
  return unit === 'B' ? `${humanBytes(Math.round(v))}/s` : `${v < 10 ? v.toFixed(1) : Math.round(v)}/s`;
}

/** Renders a snapshot as a fixed-width table (no ANSI). */
export function renderTopTable(s: TopSnapshot, rates: Map<string, Rate> | null, width = 120): string {
  const head = ['PROTO', 'SOURCE', 'DESTINATION', 'STATE', 'PACKETS', 'BYTES', 'TX/RX BYTES', 'RATE', 'SRC'];
  const rows: string[][] = s.flows.map((f: TopFlow) => {
    const r = rates?.get(f.key);
    return [
      f.proto, `${f.src}:${f.sport}`, `${f.dst}:${f.dport}`, f.state ?? '-', String(f.packets), humanBytes(f.bytes),
      `${humanBytes(f.bytes_original)}/${humanBytes(f.bytes_reply)}`,
      r ? `${rateStr(r.bps, 'B')} ${rateStr(r.pps, 'p')}` : '-', f.source,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i >= 4 && i <= 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd().slice(0, width);
  const out = [`strata top — ${s.flows.length} of ${s.total_flows} flows by ${s.by} — ${s.time}`, '', line(head)];
  for (const r of rows) out.push(line(r));
  if (rows.length === 0) out.push('(no flows)');
  return `${out.join('\n')}\n`;
}

function computeRates(prev: TopSnapshot | null, cur: TopSnapshot, dtSec: number): Map<string, Rate> {
  const m = new Map<string, Rate>();
  const old = new Map<string, TopFlow>();
  for (const f of prev?.flows ?? []) old.set(f.key, f);
  for (const f of cur.flows) {
    const o = old.get(f.key);
    m.set(f.key, o && dtSec > 0 ? { bps: Math.max(0, f.bytes - o.bytes) / dtSec, pps: Math.max(0, f.packets - o.packets) / dtSec } : { bps: null, pps: null });
  }
  return m;
}

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { booleans: ['once', 'json', 'help'], strings: ['admin', 'interval', 'n', 'by'] });
  if (a.flags.has('help')) { process.stdout.write(USAGE); return 0; }
  if (a.positionals.length > 0) throw new UsageError(`unexpected argument ${a.positionals[0]}\n${USAGE}`);
  const admin = a.values.get('admin') ?? process.env['STRATA_ADMIN'] ?? DEFAULT_ADMIN;
  const interval = Number(a.values.get('interval') ?? '2');
  if (!(interval > 0 && interval <= 3600)) throw new UsageError('--interval must be a number of seconds in (0, 3600]');
  const n = Number(a.values.get('n') ?? String(Math.max(5, (process.stdout.rows ?? 30) - 5)));
  if (!Number.isInteger(n) || n < 1) throw new UsageError('--n must be a positive integer');
  const by = a.values.get('by') ?? 'bytes';
  if (by !== 'bytes' && by !== 'packets') throw new UsageError('--by must be bytes or packets');

  if (a.flags.has('once')) {
    const s = await fetchTop(admin, n, by);
    process.stdout.write(a.flags.has('json') ? `${JSON.stringify(s)}\n` : renderTopTable(s, null, process.stdout.columns ?? 160));
    return 0;
  }

  const tty = process.stdout.isTTY === true;
  let stopped = false;
  let wake: (() => void) | null = null;
  const stop = (): void => { stopped = true; wake?.(); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  if (tty) process.stdout.write('\x1b[?1049h\x1b[?25l'); // alternate screen, hide cursor
  let prev: TopSnapshot | null = null;
  let prevAt = 0;
  try {
    while (!stopped) {
      const s = await fetchTop(admin, n, by);
      const at = performance.now();
      const rates = computeRates(prev, s, prev ? (at - prevAt) / 1000 : 0);
      const table = renderTopTable(s, rates, process.stdout.columns ?? 160);
      // Home, draw, clear what the previous frame left below.
      process.stdout.write(tty ? `\x1b[H${table.replace(/\n/g, '\x1b[K\n')}\x1b[J` : `${table}\n`);
      prev = s;
      prevAt = at;
      await new Promise<void>((r) => { const t = setTimeout(r, interval * 1000); wake = () => { clearTimeout(t); r(); }; });
      wake = null;
    }
    return 0;
  } finally {
    if (tty) process.stdout.write('\x1b[?25h\x1b[?1049l');
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
