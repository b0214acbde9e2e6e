// TCP errors. Codes are the errno names node:net uses (ECONNRESET, …) so
// stream users (tls, http, pipeline) that switch on err.code behave exactly
// as they do over a kernel socket.
import { StrataError } from '../../util/errors.js';

export type TcpErrorCode = 'ECONNRESET' | 'ECONNREFUSED' | 'ETIMEDOUT' | 'EADDRINUSE' | 'ECONNABORTED' | 'EHOSTUNREACH' | 'EPIPE' | 'EADDRNOTAVAIL';

export class TcpError extends StrataError {
  constructor(code: TcpErrorCode, message: string) {
    super(code, message);
  }
}
