// Transport errors with stable codes.
import { StrataError } from '../../util/errors.js';

/** An upstream connection could not be established (refused, unreachable, timed out). */
export class ConnectError extends StrataError {
  constructor(readonly host: string, readonly port: number, reason: string, options?: { cause?: unknown }) {
    super('ERR_STRATA_CONNECT', `connect ${host}:${port}: ${reason}`, options);
  }
}
