// The byte seam on a stream socket (node:net, TLS): what cork/uncork make of
// the pieces written between them, checked on a recording Duplex.
import { describe, it, expect } from 'vitest';
import { Duplex } from 'node:stream';
import { attachBytes } from '../src/l7/transport/bytes.js';
import type { L7Socket } from '../src/l7/transport/types.js';

class Recorder extends Duplex {
  writes: Buffer[] = [];
  override _read(): void { /* nothing to read */ }
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void { this.writes.push(c); cb(); }
  override _writev(chunks: { chunk: Buffer }[], cb: () => void): void { for (const c of chunks) this.writes.push(c.chunk); cb(); }
}

const noop = (): void => { /* unused */ };
const receiver = { onData: noop, onEnd: noop, onDrain: noop, onError: noop, onClose: noop };

function open(): { s: Recorder; io: ReturnType<typeof attachBytes> } {
  const s = new Recorder();
  return { s, io: attachBytes(s as unknown as L7Socket, receiver) };
}

describe('StreamConn (node:net and TLS)', () => {
  it('joins a corked head and body into one write, strings as latin1', async () => {
    const { s, io } = open();
    expect(io.coalesces).toBe(false);
    io.cork();
    expect(io.write('HTTP/1.1 200 OK\r\nX-Name: caf\u00e9\r\n\r\n')).toBe(true);
    expect(io.write(Buffer.from('body'))).toBe(true);
    expect(s.writes).toHaveLength(0);
    io.uncork();
    await new Promise((r) => setImmediate(r));
    expect(s.writes).toHaveLength(1);
    expect(s.writes[0]!.toString('latin1')).toBe('HTTP/1.1 200 OK\r\nX-Name: caf\u00e9\r\n\r\nbody');
  });

  it('past 16 KiB the pieces go out as they come, in order; nested corks flush at the outermost uncork', async () => {
    const { s, io } = open();
    io.cork();
    io.cork();
    io.write('a');
    io.write(Buffer.alloc(20000, 0x62));
    io.write('c');
    io.uncork();
    io.write('d');
    io.uncork();
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(s.writes).toString('latin1')).toBe(`a${'b'.repeat(20000)}cd`);
  });

  it('end() and detach() send what is held first', async () => {
    const a = open();
    a.io.cork();
    a.io.write('held');
    a.io.end();
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(a.s.writes).toString()).toBe('held');
    const b = open();
    b.io.cork();
    b.io.write('x');
    b.io.write('y');
    b.io.detach();
    b.s.write('z');
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(b.s.writes).toString()).toBe('xyz');
  });
});
