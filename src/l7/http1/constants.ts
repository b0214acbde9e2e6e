// HTTP/1.1 parser constants, in llhttp's manner: error numbers, message flags,
// leniency bits and methods are `as const` tables with stable numbers, so a
// log line, a metric label or a test can name them without strings drifting.
//
// Error numbers are llhttp's `llhttp_errno` (release 9.x) where one maps; the
// few strata adds (header overflow, too many headers) start at 40 so they never
// collide with a future llhttp number we might adopt.

export const Errno = {
  OK: 0,
  INTERNAL: 1,
  STRICT: 2,
  LF_EXPECTED: 3,
  UNEXPECTED_CONTENT_LENGTH: 4,
  CLOSED_CONNECTION: 5,
  INVALID_METHOD: 6,
  INVALID_URL: 7,
  INVALID_CONSTANT: 8,
  INVALID_VERSION: 9,
  INVALID_HEADER_TOKEN: 10,
  INVALID_CONTENT_LENGTH: 11,
  INVALID_CHUNK_SIZE: 12,
  INVALID_STATUS: 13,
  INVALID_EOF_STATE: 14,
  INVALID_TRANSFER_ENCODING: 15,
  PAUSED: 21,
  PAUSED_UPGRADE: 22,
  PAUSED_H2_UPGRADE: 23,
  USER: 24,
  CR_EXPECTED: 25,
  UNEXPECTED_SPACE: 30,
  // strata additions: a server answers both with 431 Request Header Fields Too Large.
  HEADER_OVERFLOW: 40,
  TOO_MANY_HEADERS: 41,
  // chunk extensions longer than the configured bound (node's CVE-2024-22019 defence).
  CHUNK_EXTENSIONS_OVERFLOW: 42,
} as const;
export type Errno = (typeof Errno)[keyof typeof Errno];

export const ErrnoName: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(Errno).map(([k, v]) => [v, `HPE_${k}`])),
);

/** Per-message flags (llhttp's `llhttp_flags`, same bits). */
export const Flags = {
  CONNECTION_KEEP_ALIVE: 1 << 0,
  CONNECTION_CLOSE: 1 << 1,
  CONNECTION_UPGRADE: 1 << 2,
  CHUNKED: 1 << 3,
  UPGRADE: 1 << 4,
  CONTENT_LENGTH: 1 << 5,
  SKIPBODY: 1 << 6,
  TRAILING: 1 << 7,
  TRANSFER_ENCODING: 1 << 9,
} as const;

/**
 * Leniency bits (llhttp's `llhttp_lenient_flags`, same bits). All are off by
 * default and strata implements only the ones marked below; the others exist so
 * a corpus case or a config file that names them is recognised and refused
 * explicitly instead of being silently accepted.
 */
export const Lenient = {
  HEADERS: 1 << 0, // partly implemented: control characters in header values (not obs-fold, not spaces in names)
  CHUNKED_LENGTH: 1 << 1, // implemented: Content-Length together with Transfer-Encoding
  KEEP_ALIVE: 1 << 2, // implemented: data after `Connection: close` starts a new message
  TRANSFER_ENCODING: 1 << 3, // implemented: codings after `chunked` are tolerated
  VERSION: 1 << 4, // implemented: any single-digit major.minor version
  DATA_AFTER_CLOSE: 1 << 5, // implemented: same as KEEP_ALIVE for the closed state
  OPTIONAL_LF_AFTER_CR: 1 << 6, // not implemented
  OPTIONAL_CRLF_AFTER_CHUNK: 1 << 7, // not implemented
  OPTIONAL_CR_BEFORE_LF: 1 << 8, // not implemented
  SPACES_AFTER_CHUNK_SIZE: 1 << 9, // implemented: SP/HTAB between chunk size and CRLF or ';'
  HEADER_VALUE_RELAXED: 1 << 10, // not implemented
} as const;

export const LENIENT_IMPLEMENTED =
  Lenient.HEADERS | Lenient.CHUNKED_LENGTH | Lenient.KEEP_ALIVE | Lenient.TRANSFER_ENCODING |
  Lenient.VERSION | Lenient.DATA_AFTER_CLOSE | Lenient.SPACES_AFTER_CHUNK_SIZE;

/** Callback results. Any other non-zero value from a callback is a user error (HPE_USER). */
export const Cb = {
  OK: 0,
  /** onHeadersComplete only: the message has no body (e.g. the response to HEAD). */
  SKIP_BODY: 1,
  /** onHeadersComplete only: no body, and the bytes after the head belong to another protocol. */
  UPGRADE: 2,
  /** Stop feed() after this event; resume() and feed the rest later (backpressure). */
  PAUSE: Errno.PAUSED,
} as const;

export const ParserType = { REQUEST: 0, RESPONSE: 1 } as const;
export type ParserType = (typeof ParserType)[keyof typeof ParserType];

/** llhttp's method numbering (constants.ts, `METHODS`). */
export const Method = {
  DELETE: 0, GET: 1, HEAD: 2, POST: 3, PUT: 4, CONNECT: 5, OPTIONS: 6, TRACE: 7,
  COPY: 8, LOCK: 9, MKCOL: 10, MOVE: 11, PROPFIND: 12, PROPPATCH: 13, SEARCH: 14, UNLOCK: 15,
  BIND: 16, REBIND: 17, UNBIND: 18, ACL: 19, REPORT: 20, MKACTIVITY: 21, CHECKOUT: 22, MERGE: 23,
  'M-SEARCH': 24, NOTIFY: 25, SUBSCRIBE: 26, UNSUBSCRIBE: 27, PATCH: 28, PURGE: 29, MKCALENDAR: 30,
  LINK: 31, UNLINK: 32, SOURCE: 33, PRI: 34, DESCRIBE: 35, ANNOUNCE: 36, SETUP: 37, PLAY: 38,
  PAUSE: 39, TEARDOWN: 40, GET_PARAMETER: 41, SET_PARAMETER: 42, REDIRECT: 43, RECORD: 44,
  FLUSH: 45, QUERY: 46,
} as const;

/** Interned method names indexed by number: the parser never builds a method string. */
export const METHOD_NAMES: readonly string[] = (() => {
  const out: string[] = [];
  for (const [k, v] of Object.entries(Method)) out[v] = k;
  return Object.freeze(out);
})();

const M = Method;
/** Methods valid with HTTP/x.y (llhttp's METHODS_HTTP). */
export const METHODS_HTTP: readonly number[] = [
  M.DELETE, M.GET, M.HEAD, M.POST, M.PUT, M.CONNECT, M.OPTIONS, M.TRACE, M.COPY, M.LOCK, M.MKCOL,
  M.MOVE, M.PROPFIND, M.PROPPATCH, M.SEARCH, M.UNLOCK, M.BIND, M.REBIND, M.UNBIND, M.ACL, M.REPORT,
  M.MKACTIVITY, M.CHECKOUT, M.MERGE, M['M-SEARCH'], M.NOTIFY, M.SUBSCRIBE, M.UNSUBSCRIBE, M.PATCH,
  M.PURGE, M.MKCALENDAR, M.LINK, M.UNLINK, M.PRI, M.SOURCE, M.QUERY,
];
/** Methods valid with RTSP/x.y (llhttp's METHODS_RTSP). */
export const METHODS_RTSP: readonly number[] = [
  M.OPTIONS, M.DESCRIBE, M.ANNOUNCE, M.SETUP, M.PLAY, M.PAUSE, M.TEARDOWN, M.GET_PARAMETER,
  M.SET_PARAMETER, M.REDIRECT, M.RECORD, M.FLUSH, M.GET, M.POST,
];

/** Start-line protocol names llhttp accepts; a server should answer anything but HTTP with 505. */
export const Protocol = { HTTP: 0, RTSP: 1, ICE: 2 } as const;
export type Protocol = (typeof Protocol)[keyof typeof Protocol];
