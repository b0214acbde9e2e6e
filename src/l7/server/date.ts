// The Date header (RFC 9110 §6.6.1), formatted once per second rather than
// per response. The clock is an input: callers pass the wall-clock time.

export class DateCache {
  private second = -1;
  private line = Buffer.alloc(0);
  private str = '';

  /** "Date: <IMF-fixdate>\r\n" for the wall-clock time `nowMs`. */
  lineFor(nowMs: number): Buffer {
    const s = Math.floor(nowMs / 1000);
    if (s !== this.second) this.update(s);
    return this.line;
  }

  /** The IMF-fixdate value for `nowMs`. */
  valueFor(nowMs: number): string {
    const s = Math.floor(nowMs / 1000);
    if (s !== this.second) this.update(s);
    return this.str;
  }

  private update(s: number): void {
    this.second = s;
    this.str = new Date(s * 1000).toUTCString();
    this.line = Buffer.from(`Date: ${this.str}\r\n`, 'latin1');
  }
}
