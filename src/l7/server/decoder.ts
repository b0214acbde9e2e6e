// What the server needs from an HTTP/1.1 request parser, and nothing more: a
// head, body chunks, an end, and an error with the status it maps to. The
// adapter over the project's parser (src/l7/http1) lives in http1-decoder.ts;
// keeping the seam narrow is what lets the proxy's upstream side reuse the
// same shape in response mode.

export interface RequestHead {
  method: string;
  /** The request-target as received. */
  url: string;
  versionMajor: number;
  versionMinor: number;
  /** Flat [name0, value0, name1, value1, …]; names lowercased (HTTP field names are case-insensitive). */
  rawHeaders: string[];
  /** RFC 9112 §9.3 persistence, from the version and Connection. */
  keepAlive: boolean;
  /** Content-Length, or -1 for chunked; 0 when the request has no body. */
  contentLength: number;
  chunked: boolean;
  /** The request asks to switch protocols (Upgrade plus the "upgrade" connection option, RFC 9110 §7.8) or is a CONNECT. */
  upgrade: boolean;
}

export interface DecoderSink {
  onHead(head: RequestHead): void;
  /** A body span; valid only during the call unless the transport hands over fresh buffers (node:net does). */
  onBody(chunk: Buffer): void;
  /**
   * The message is complete; trailer fields (flat, names lowercased) when a
   * chunked body carried any. false stops the decoder after this message
   * (see RequestDecoder.stopped) and true goes on.
   */
  onEnd(trailers: string[] | null): boolean;
  /**
   * The request that just ended asked to switch protocols: true takes `rest`
   * (the bytes after it, a copy) and the rest of the stream away from HTTP;
   * false goes on parsing HTTP (the upgrade is refused).
   */
  onUpgrade(rest: Buffer): boolean;
}

export interface DecodeFailure {
  /** Stable code from the parser's error table. */
  code: string;
  reason: string;
  /** The response the server sends: 400, 413, 431, 501 or 505. */
  status: number;
}

export interface RequestDecoder {
  /**
   * Parses buf; returns null or the failure (after which the decoder is
   * dead). Once the sink's onEnd() returned false the decoder is stopped:
   * the bytes after that message, and any fed while stopped, are kept
   * (the buffers themselves, not copies) until resume().
   */
  feed(buf: Buffer): DecodeFailure | null;
  /** Stopped by the sink's onEnd() (see feed). */
  readonly stopped: boolean;
  /** Parses the bytes kept while stopped; it may stop again. */
  resume(): DecodeFailure | null;
  /** True between messages with nothing kept (no partial or unparsed message buffered). */
  readonly idle: boolean;
  /** The connection ended: a failure when a message was cut short. */
  finish(): DecodeFailure | null;
}

export type DecoderFactory = (sink: DecoderSink, limits: DecoderLimits) => RequestDecoder;

export interface DecoderLimits {
  /** Bytes of request line + headers (default 16 KiB). */
  maxHeaderSize: number;
  /** Header fields (default 100). */
  maxHeaders: number;
}
