// The node proxy's own log: one event per line, JSON by default
// ({"time","level","msg",...fields}) or text ("time level msg k=v ..."),
// filtered by level, to stderr, stdout or a file (appended). Events below
// the level cost one comparison. Access log lines are separate (the proxy's
// access log keeps its own path and shape).
import { createWriteStream, type WriteStream } from 'node:fs';
import type { LoggingConfig } from '../config/types.js';

export type LogLevel = LoggingConfig['level'];
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink { write(s: string): unknown }

export class Logger {
  private rank: number;
  private format: 'json' | 'text';
  private out: LogSink;
  private file: WriteStream | null = null;
  private path: string;

  constructor(opts: { level?: LogLevel; format?: 'json' | 'text'; path?: string; sink?: LogSink } = {}) {
    this.rank = RANK[opts.level ?? 'info'];
    this.format = opts.format ?? 'json';
    this.path = opts.path ?? 'stderr';
    this.out = opts.sink ?? this.open(this.path);
  }

  private open(path: string): LogSink {
    if (path === 'stderr') return process.stderr;
    if (path === 'stdout') return process.stdout;
    this.file = createWriteStream(path, { flags: 'a' });
    this.file.on('error', (e) => { process.stderr.write(`strata proxy: log file ${path}: ${e.message}\n`); });
    return this.file;
  }

  /** Applies a (re)loaded logging section: level and format at once, the path by reopening. */
  configure(cfg: Pick<LoggingConfig, 'level' | 'format' | 'path'>): void {
    this.rank = RANK[cfg.level];
    this.format = cfg.format;
    if (cfg.path !== this.path) {
      const old = this.file;
      this.path = cfg.path;
      this.file = null;
      this.out = this.open(cfg.path);
      old?.end();
    }
  }

  enabled(level: LogLevel): boolean { return RANK[level] >= this.rank; }

  debug(msg: string, fields?: Record<string, unknown>): void { this.log('debug', msg, fields); }
  info(msg: string, fields?: Record<string, unknown>): void { this.log('info', msg, fields); }
  warn(msg: string, fields?: Record<string, unknown>): void { this.log('warn', msg, fields); }
  error(msg: string, fields?: Record<string, unknown>): void { this.log('error', msg, fields); }

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (RANK[level] < this.rank) return;
    const time = new Date().toISOString();
    if (this.format === 'json') {
      this.out.write(`${JSON.stringify({ time, level, msg, ...fields })}\n`);
      return;
    }
    let s = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [k, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const t = typeof v === 'string' ? v : JSON.stringify(v);
      s += ` ${k}=${/[\s"=]/.test(t) ? JSON.stringify(t) : t}`;
    }
    this.out.write(`${s}\n`);
  }

  /** Flushes and closes a log file (stdout/stderr stay open). */
  close(): Promise<void> {
    const f = this.file;
    this.file = null;
    if (f === null) return Promise.resolve();
    return new Promise((resolve) => f.end(() => resolve()));
  }
}
