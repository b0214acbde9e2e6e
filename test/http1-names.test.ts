// Field-name interning and request-target classification (RFC 9112 §3.2).

import { describe, expect, it } from 'vitest';
import { headerName, Method, requestTargetForm, TargetForm } from '../src/l7/http1/index.js';

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
