// `discard` (RFC 863 in spirit): read and drop everything, answer nothing.
// The raw TCP sink for throughput benchmarks.
import type { L7Socket } from '../l7/transport/types.js';

export function tcpDiscard(s: L7Socket): void {
  s.on('error', () => s.destroy());
  s.on('data', () => {});
  s.on('end', () => s.end());
}
