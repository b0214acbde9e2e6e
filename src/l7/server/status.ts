// Reason phrases (RFC 9110 §15) and preserialized status lines.

export const STATUS_TEXT: Record<number, string> = {
  100: 'Continue', 101: 'Switching Protocols', 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content',
  206: 'Partial Content', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified',
  307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden',
  404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 409: 'Conflict', 411: 'Length Required',
  413: 'Content Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 417: 'Expectation Failed',
  426: 'Upgrade Required', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};

const lines = new Map<number, string>();

/** "HTTP/1.1 <code> <reason>\r\n", cached per code. */
export function statusLine(code: number): string {
  let l = lines.get(code);
  if (l === undefined) {
    l = `HTTP/1.1 ${code} ${STATUS_TEXT[code] ?? 'Unknown'}\r\n`;
    if (code >= 100 && code <= 999) lines.set(code, l);
  }
  return l;
}

/** Responses that never carry a body (RFC 9110 §6.4.1). */
export function statusHasNoBody(code: number): boolean {
  return (code >= 100 && code < 200) || code === 204 || code === 304;
}
