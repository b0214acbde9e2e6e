// `echo`: the response body is the request body, streamed with backpressure
// both ways (a slow client slows the reading of the request). HTTP echo keeps
// the request's Content-Type; raw TCP echo returns bytes as they come.
import type { Readable } from 'node:stream';
import type { Handler, ServerResponse } from '../l7/server/index.js';
import type { L7Socket } from '../l7/transport/types.js';
import { attachBytes } from '../l7/transport/bytes.js';

/** Streams src into res, pausing src while res's socket is full; ends res. */
export function pipeToResponse(src: Readable, res: ServerResponse): void {
  const onDrain = (): void => { src.resume(); };
  res.on('drain', onDrain);
  src.on('data', (c: Buffer) => { if (!res.write(c)) src.pause(); });
  src.once('end', () => { res.off('drain', onDrain); res.end(); });
  src.once('error', () => { res.off('drain', onDrain); if (!res.finished) res.end(); });
}

export const echoApp: Handler = (req, res) => {
  const type = req.header('content-type');
  if (req.contentLength >= 0 && !req.chunked) {
    res.setHeader('Content-Length', req.contentLength);
  }
  res.writeHead(200, type !== undefined ? { 'Content-Type': type } : undefined);
  pipeToResponse(req.body, res);
};

/**
 * Raw TCP echo on L7's byte seam (src/l7/transport/bytes.ts): on the stack a
 * callback per arrival and a write straight into the send ring, on node:net
 * the socket's events. Backpressure both ways: a full send side stops the
 * reading until it drains. The peer's FIN is echoed too.
 */
export function tcpEcho(s: L7Socket): void {
  const io = attachBytes(s, {
    onData: (c) => { if (!io.write(c)) io.pause(); },
    onDrain: () => { io.resume(); },
    onEnd: () => { io.end(); },
    onError: () => { io.destroy(); },
    onClose: () => {},
  });
}
