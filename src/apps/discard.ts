// `discard` (RFC 863 in spirit): read and drop everything, answer nothing.
// The raw TCP sink for throughput benchmarks.
import type { L7Socket } from '../l7/transport/types.js';
import { attachBytes } from '../l7/transport/bytes.js';

/** On L7's byte seam, as tcpEcho: no stream between the transport and the sink. */
export function tcpDiscard(s: L7Socket): void {
  const io = attachBytes(s, {
    onData: () => {},
    onDrain: () => {},
    onEnd: () => { io.end(); },
    onError: () => { io.destroy(); },
    onClose: () => {},
  });
}
