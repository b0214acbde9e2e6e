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
