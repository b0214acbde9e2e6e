// Errors are classes with stable, machine-readable codes (undici's habit).
// Throwing is for API misuse and environment failures; malformed packets are
// never thrown, they are dropped and counted.

export class StrataError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A transport or feature cannot run here (no root, no XDP, no /dev/net/tun …). */
export class UnavailableError extends StrataError {
  constructor(readonly feature: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_STRATA_UNAVAILABLE', `${feature} unavailable: ${reason}`, options);
  }
}

/** A system call failed; errno and syscall are those the kernel reported. */
export class SystemError extends StrataError {
  constructor(readonly syscall: string, readonly errno: number, message: string) {
    super('ERR_STRATA_SYSCALL', `${syscall}: ${message} (errno ${errno})`);
  }
}

export class InvalidArgumentError extends StrataError {
  constructor(message: string) {
    super('ERR_STRATA_INVALID_ARG', message);
  }
}

export class ConfigError extends StrataError {
  constructor(message: string, readonly file?: string, readonly line?: number, readonly field?: string) {
    super('ERR_STRATA_CONFIG', message);
  }
}

/**
 * An argument of the wrong type (not a number, not a Uint32Array …), thrown
 * by the native addon and its TypeScript wrappers. A TypeError, as Node's own
 * ERR_INVALID_ARG_TYPE is, with a stable code.
 */
export class ArgumentTypeError extends TypeError {
  readonly code = 'ERR_STRATA_ARG_TYPE';
  constructor(message: string) {
    super(message);
    this.name = 'ArgumentTypeError';
  }
}

/**
 * A number that is not an integer, is NaN or infinite, or lies outside the
 * range an argument allows (a burst past its descriptor array …). A
 * RangeError, as Node's ERR_OUT_OF_RANGE is, with a stable code.
 */
export class ArgumentRangeError extends RangeError {
  readonly code = 'ERR_STRATA_ARG_RANGE';
  constructor(message: string) {
    super(message);
    this.name = 'ArgumentRangeError';
  }
}
