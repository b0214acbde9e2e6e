// The HTTP/1.1 server: public surface.
import { HttpServer as Core, type Handler, type HttpServerOptions } from './server.js';
import { http1RequestDecoder } from './http1-decoder.js';

export { FixedResponse, ServerRequest, ServerResponse, HttpServerError } from './message.js';
export type { Handler, HttpServerOptions, ServerStats } from './server.js';
export { DEFAULT_MAX_PIPELINED, DEFAULT_OUTPUT_HIGH_WATER_MARK } from './server.js';
export { isValidHost, HostIssue } from './host.js';
export type { RequestHead, RequestDecoder, DecoderFactory, DecodeFailure } from './decoder.js';
export { DateCache } from './date.js';
export { UpgradeResponse, upgradeVia, type UpgradeHandler, type UpgradeViaOptions } from './upgrade.js';
export { STATUS_TEXT } from './status.js';

/** An HTTP/1.1 server using the project's parser unless another decoder is given. */
export class HttpServer extends Core {
  constructor(handler: Handler, opts: HttpServerOptions = {}) {
    super(handler, { ...opts, decoder: opts.decoder ?? http1RequestDecoder });
  }
}

export function createServer(handler: Handler, opts: HttpServerOptions = {}): HttpServer {
  return new HttpServer(handler, opts);
}
