// The TLS carrier's contract with node's JSStreamSocket, on a scripted
// direct-mode socket: bytes that arrive before TLS starts reading are held
// and handed over in order on the next tick after resume(), the peer's end
// behind them; write callbacks run once the send ring holds the bytes (at
// once, or at the drain); a close fails the writes still waiting.
import { describe, it, expect } from 'vitest';
import { Duplex } from 'node:stream';
import { DirectTlsCarrier } from '../src/l7/transport/tls-carrier.js';

type Receiver = { onData(c: Buffer): void; onEnd(): void; onDrain(): void; onError(e: Error): void };

/** A direct-mode socket whose send ring takes `room` bytes until drained by the test. */
class ScriptedSocket extends Duplex {
  rx: Receiver | null = null;
  pausedDirect = false;
  room = Infinity;
  written: Buffer[] = [];
  ended = false;
  attachReceiver(r: Receiver): void { this.rx = r; }
  detachReceiver(): void { this.rx = null; }
  pauseDirect(): void { this.pausedDirect = true; }
  resumeDirect(): void { this.pausedDirect = false; }
  writeDirect(c: Uint8Array | string): boolean {
    const b = Buffer.from(c as Uint8Array);
    this.written.push(b);
    if (b.length <= this.room) { this.room -= b.length; return true; }
    this.room = 0;
    return false;
  }
  endDirect(): void { this.ended = true; }
  override _read(): void { /* scripted */ }
  override _write(_c: Buffer, _e: BufferEncoding, cb: () => void): void { cb(); }
}

describe('DirectTlsCarrier', () => {
  it('holds what arrives before reading starts and hands it over, in order and then the end, on the next tick', async () => {
    const s = new ScriptedSocket();
    const c = new DirectTlsCarrier(s as never);
    expect(s.pausedDirect).toBe(true);
    const seen: string[] = [];
    c.on('data', (d: Buffer) => seen.push(d.toString()));
    c.on('end', () => seen.push('END'));
    s.rx!.onData(Buffer.from('hello'));
    s.rx!.onData(Buffer.from(' world'));
    s.rx!.onEnd();
    c.resume();
    expect(seen).toEqual([]); // not inside the caller
    await new Promise((r) => process.nextTick(r));
    expect(seen).toEqual(['hello', ' world', 'END']);
    expect(c.readable).toBe(false);
  });

  it('delivers at once while reading, and pause() stops delivery at the socket', () => {
    const s = new ScriptedSocket();
    const c = new DirectTlsCarrier(s as never);
    const seen: string[] = [];
    c.on('data', (d: Buffer) => seen.push(d.toString()));
    c.resume();
    expect(s.pausedDirect).toBe(false);
    s.rx!.onData(Buffer.from('a'));
    expect(seen).toEqual(['a']);
    c.pause();
    expect(s.pausedDirect).toBe(true);
  });

  it('write callbacks: at once when the ring takes it, at the drain when it cannot, EPIPE for those still waiting at close', () => {
    const s = new ScriptedSocket();
    const c = new DirectTlsCarrier(s as never);
    c.on('error', () => { /* not expected */ });
    const done: string[] = [];
    s.room = 10;
    expect(c.write(Buffer.alloc(4), () => done.push('w1'))).toBe(true);
    expect(done).toEqual(['w1']);
    expect(c.write(Buffer.alloc(20), () => done.push('w2'))).toBe(false);
    expect(done).toEqual(['w1']);
    s.rx!.onDrain();
    expect(done).toEqual(['w1', 'w2']);
    expect(c.write(Buffer.alloc(20), (e) => done.push(`w3 ${(e as NodeJS.ErrnoException | undefined)?.code}`))).toBe(false);
    s.emit('close');
    expect(done).toEqual(['w1', 'w2', 'w3 EPIPE']);
    expect(c.writable).toBe(false);
  });

  it('end() sends the FIN once and calls back; a write after it fails', async () => {
    const s = new ScriptedSocket();
    const c = new DirectTlsCarrier(s as never);
    await new Promise<void>((r) => c.end(() => r()));
    expect(s.ended).toBe(true);
    const err = await new Promise<Error | null | undefined>((r) => c.write(Buffer.from('x'), (e) => r(e)));
    expect((err as NodeJS.ErrnoException).code).toBe('EPIPE');
  });
});
