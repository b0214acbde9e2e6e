// Typed access to the XDP program's pinned maps. Layouts mirror the structs
// in bpf/strata_shared.h (sizes in src/xdp/shared.ts); the addon only moves
// bytes. Control plane: allocation here is fine.
import { loadNative, type NativeAddon, type MapInfo } from '../link/native.js';
import { InvalidArgumentError, StrataError } from '../util/errors.js';

export class BpfMap {
  readonly fd: number;
  readonly info: MapInfo;
  private closed = false;

  private constructor(private readonly n: NativeAddon, readonly path: string, fd: number) {
    this.fd = fd;
    this.info = n.mapInfo(fd);
  }

  static open(path: string): BpfMap {
    const n = loadNative('bpf maps');
    return new BpfMap(n, path, n.mapOpen(path));
  }

  private check(key: Uint8Array): void {
    if (this.closed) throw new StrataError('ERR_STRATA_CLOSED', `map ${this.path} is closed`);
    if (key.length !== this.info.keySize) throw new InvalidArgumentError(`key for ${this.info.name} must be ${this.info.keySize} bytes`);
  }

  /** The value (all CPUs' values for per-CPU maps, each padded to 8 bytes), or null. */
  lookup(key: Uint8Array): Uint8Array | null {
    this.check(key);
    const v = new Uint8Array(this.info.valueBytes);
    return this.n.mapLookup(this.fd, key, v) ? v : null;
  }

  update(key: Uint8Array, value: Uint8Array, flags = 0): void {
    this.check(key);
    this.n.mapUpdate(this.fd, key, value, flags);
  }

  delete(key: Uint8Array): boolean {
    this.check(key);
    return this.n.mapDelete(this.fd, key);
  }

  *keys(): Generator<Uint8Array> {
    let prev: Uint8Array | null = null;
    for (;;) {
      const next = new Uint8Array(this.info.keySize);
      if (!this.n.mapNextKey(this.fd, prev, next)) return;
      yield next;
      prev = next;
    }
  }

  /** Number of CPUs a per-CPU lookup returns. */
  cpus(): number { return this.info.perCpu ? this.info.valueBytes / ((this.info.valueSize + 7) & ~7) : 1; }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.n.mapClose(this.fd);
  }
}
