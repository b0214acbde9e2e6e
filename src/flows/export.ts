// Flow exporters and their readers.
//
//   JSON lines  one record per line, "\n"-terminated (jsonlines.org): what
//               `hubble observe -o jsonpb` and log shippers read.
//   CBOR        a CBOR sequence (RFC 8742): records back to back, no framing.
//               cbor-x's record extension with `sequential: true` writes each
//               record shape once and refers to it afterwards, so a stream
//               of flows costs little more than their values. A reader must
//               therefore decode the sequence from its start, in order, with
//               one decoder (readCborSequence does).
//
// Writers never block the request path: they write to a stream and, when the
// stream signals backpressure, drop records until it drains, counting each
// drop (Hubble calls these "lost events"). A writer bound to a file opens it
// for appending.
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { Encoder, DecoderStream } from 'cbor-x';
import type { FlowSink } from './bus.js';
import { InvalidArgumentError } from '../util/errors.js';
import type { FlowRecord } from './record.js';

abstract class StreamExporter implements FlowSink {
  /** Records written. */
  written = 0;
  /** Records dropped while the stream was full. */
  dropped = 0;
  private blocked = false;
  private readonly owned: boolean;
  protected constructor(readonly out: Writable, owned: boolean, private readonly dropOnBackpressure: boolean) {
    this.owned = owned;
    out.on('drain', () => { this.blocked = false; });
    out.on('error', () => { this.blocked = true; });
  }
  protected abstract encode(r: FlowRecord): Buffer | string;
  write(r: FlowRecord): void {
    if (this.out.destroyed || this.out.writableEnded) throw new Error('flow exporter stream is closed');
    if (this.blocked && this.dropOnBackpressure) { this.dropped++; return; }
    this.written++;
    if (!this.out.write(this.encode(r))) this.blocked = true;
  }
  /** Ends the stream when the exporter opened it; resolves once flushed. */
  close(): Promise<void> {
    if (!this.owned) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.out.writableFinished || this.out.destroyed) { resolve(); return; }
      this.out.once('close', () => resolve());
      this.out.end();
    });
  }
}

export interface ExporterOptions {
  /** Drop records while the stream is full instead of buffering them (default true). */
  dropOnBackpressure?: boolean;
}

export class JsonLinesExporter extends StreamExporter {
  constructor(out: Writable | string, opts: ExporterOptions = {}) {
    const owned = typeof out === 'string';
    super(owned ? createWriteStream(out, { flags: 'a' }) : out, owned, opts.dropOnBackpressure ?? true);
  }
  protected encode(r: FlowRecord): string { return `${JSON.stringify(r)}\n`; }
}

export class CborExporter extends StreamExporter {
  private readonly enc = new Encoder({ sequential: true, useRecords: true });
  constructor(out: Writable | string, opts: ExporterOptions = {}) {
    const owned = typeof out === 'string';
    super(owned ? createWriteStream(out, { flags: 'w' }) : out, owned, opts.dropOnBackpressure ?? false);
  }
  // A sequential encoder's output refers to shapes defined earlier in the
  // stream, so dropping a record could drop a shape definition: CBOR streams
  // buffer by default rather than drop.
  protected encode(r: FlowRecord): Buffer { return this.enc.encode(r); }
}

/** Encodes records as one CBOR sequence (the bytes a CborExporter writes). */
export function encodeCborSequence(records: Iterable<FlowRecord>): Buffer {
  const enc = new Encoder({ sequential: true, useRecords: true });
  const parts: Buffer[] = [];
  for (const r of records) parts.push(enc.encode(r));
  return Buffer.concat(parts);
}

function toStream(src: Readable | string): Readable {
  return typeof src === 'string' ? createReadStream(src) : src;
}

/** Reads JSON-lines records (blank lines skipped; a bad line throws with its number). */
export async function* readJsonLines(src: Readable | string): AsyncGenerator<FlowRecord> {
  const rl = createInterface({ input: toStream(src), crlfDelay: Infinity });
  let n = 0;
  for await (const line of rl) {
    n++;
    if (line.trim() === '') continue;
    try { yield JSON.parse(line) as FlowRecord; } catch (e) { throw new SyntaxError(`flow record on line ${n}: ${(e as Error).message}`); }
  }
}

/** Reads a CBOR sequence of records written by CborExporter, in order. */
export async function* readCborSequence(src: Readable | string): AsyncGenerator<FlowRecord> {
  const dec = new DecoderStream({ sequential: true, useRecords: true } as ConstructorParameters<typeof DecoderStream>[0]);
  const input = toStream(src);
  input.on('error', (e) => dec.destroy(e));
  input.pipe(dec);
  for await (const r of dec) yield r as FlowRecord;
}

/**
 * An exporter from a config or command-line string: "jsonl:PATH" or
 * "cbor:PATH", or a bare PATH whose extension names the format (.jsonl,
 * .ndjson, .json → JSON lines; .cbor, .cborseq → CBOR sequence). "-" (or
 * "jsonl:-", "cbor:-") writes to stdout.
 */
export function exporterFor(target: string, opts: ExporterOptions = {}): JsonLinesExporter | CborExporter {
  let format: 'jsonl' | 'cbor' | null = null;
  let path = target;
  const m = /^(jsonl|json|ndjson|cbor):(.+)$/.exec(target);
  if (m) { format = m[1] === 'cbor' ? 'cbor' : 'jsonl'; path = m[2]!; }
  else if (target === '-' || /\.(jsonl|ndjson|json)$/i.test(target)) format = 'jsonl';
  else if (/\.(cbor|cborseq)$/i.test(target)) format = 'cbor';
  if (format === null) throw new InvalidArgumentError(`flow exporter ${JSON.stringify(target)}: name the format (jsonl:PATH or cbor:PATH) or use a .jsonl/.cbor file`);
  const out = path === '-' ? process.stdout : path;
  return format === 'cbor' ? new CborExporter(out, opts) : new JsonLinesExporter(out, opts);
}
