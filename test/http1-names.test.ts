// Field-name interning and request-target classification (RFC 9112 §3.2).

import { describe, expect, it } from 'vitest';
import { headerName, Method, requestTargetForm, TargetForm } from '../src/l7/http1/index.js';
import { latin1Cached } from '../src/l7/http1/names.js';

const b = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe('headerName', () => {
  it('returns interned lowercase strings for common names in any case', () => {
    const src = b('xxContent-LENGTHyy');
    expect(headerName(src, 2, 16)).toBe('content-length');
    expect(headerName(b('HOST'), 0, 4)).toBe('host');
    expect(headerName(b('x-forwarded-for'), 0, 15)).toBe('x-forwarded-for');
    expect(headerName(b('Sec-WebSocket-Key'), 0, 17)).toBe('sec-websocket-key');
  });

  it('lowercases uncommon names and does not confuse near misses', () => {
    expect(headerName(b('X-Custom_Thing'), 0, 14)).toBe('x-custom_thing');
    expect(headerName(b('Hosts'), 0, 5)).toBe('hosts');
    expect(headerName(b('Content-Lengtx'), 0, 14)).toBe('content-lengtx');
    expect(headerName(b('Content_Length'), 0, 14)).toBe('content_length');
  });
});

describe('latin1Cached', () => {
  it('gives the same string as a latin1 conversion for hits, misses, collisions and long values', () => {
    // Values of one length that differ in one byte land in the same or other
    // slots; each must come back as its own bytes, however the table churns.
    const values: string[] = [];
    for (let i = 0; i < 2000; i++) values.push(`v${i % 37}-${'x'.repeat(i % 50)}\u00e9${String.fromCharCode(0x20 + (i % 90))}`);
    values.push('', '/', 'a'.repeat(48), 'a'.repeat(49), 'b'.repeat(300));
    const buf = Buffer.from(`..${values.join('|')}..`, 'latin1');
    let at = 2;
    for (let round = 0; round < 3; round++) {
      at = 2;
      for (const v of values) {
        expect(latin1Cached(buf, at, at + v.length)).toBe(v);
        at += v.length + 1;
      }
    }
  });

  it('reads a plain Uint8Array view (not a Buffer) and one at an offset into its memory', () => {
    const mem = new Uint8Array(64);
    mem.set(b('Host: 10.0.0.1:8080'), 16);
    const view = new Uint8Array(mem.buffer, 10, 40);
    expect(latin1Cached(view, 12, 25)).toBe('10.0.0.1:8080');
    // The same bytes somewhere else hit the slot; other bytes of the same length do not.
    expect(latin1Cached(b('x10.0.0.1:8080'), 1, 14)).toBe('10.0.0.1:8080');
    expect(latin1Cached(b('10.0.0.2:8080'), 0, 13)).toBe('10.0.0.2:8080');
  });
});

describe('requestTargetForm', () => {
  const f = (m: number, t: string): number => requestTargetForm(m, b(t), 0, t.length);
  it('origin and absolute forms for ordinary methods', () => {
    expect(f(Method.GET, '/a/b?c=d')).toBe(TargetForm.ORIGIN);
    expect(f(Method.GET, 'http://example.com/x')).toBe(TargetForm.ABSOLUTE);
    expect(f(Method.POST, 'https://example.com:8443')).toBe(TargetForm.ABSOLUTE);
    expect(f(Method.GET, 'example.com:80')).toBe(TargetForm.INVALID);
    expect(f(Method.GET, 'foo')).toBe(TargetForm.INVALID);
    expect(f(Method.GET, '*')).toBe(TargetForm.INVALID);
    expect(f(Method.GET, '')).toBe(TargetForm.INVALID);
  });
  it('asterisk only for OPTIONS, authority only for CONNECT', () => {
    expect(f(Method.OPTIONS, '*')).toBe(TargetForm.ASTERISK);
    expect(f(Method.OPTIONS, '/x')).toBe(TargetForm.ORIGIN);
    expect(f(Method.CONNECT, 'example.com:443')).toBe(TargetForm.AUTHORITY);
    expect(f(Method.CONNECT, '[2001:db8::1]:443')).toBe(TargetForm.AUTHORITY);
    expect(f(Method.CONNECT, 'example.com')).toBe(TargetForm.INVALID);
    expect(f(Method.CONNECT, 'example.com:')).toBe(TargetForm.INVALID);
    expect(f(Method.CONNECT, 'user@example.com:443')).toBe(TargetForm.INVALID);
    expect(f(Method.CONNECT, '/path')).toBe(TargetForm.INVALID);
    expect(f(Method.CONNECT, 'example.com:443/x')).toBe(TargetForm.INVALID);
  });
});
