// The IPv4 routing table: connected routes from the interface addresses plus
// static routes (a default gateway), chosen by longest prefix match, then
// lowest metric. Tables are small (a host's), so entries are kept sorted by
// prefix length, longest first, and lookup is a linear scan that allocates
// nothing: it fills the table's `nextHop` and `src` fields and returns the
// route index (-1 when there is no route).
import { InvalidArgumentError } from '../util/errors.js';
import { ip4ToString } from './registration.js';

export interface Route {
  /** Network address, host order. */
  readonly prefix: number;
  readonly prefixLen: number;
  /** Gateway, host order; 0 for a connected (on-link) route. */
  readonly gateway: number;
  /** Preferred source address for packets using the route. */
  readonly src: number;
  readonly metric: number;
}

export function prefixMask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export class RouteTable {
  private routes: Route[] = [];
  /** After lookup(): the next hop (the gateway, or dst itself when on-link). */
  nextHop = 0;
  /** After lookup(): the source address to use. */
  src = 0;

  add(r: { prefix: number; prefixLen: number; gateway?: number; src: number; metric?: number }): void {
    if (!(r.prefixLen >= 0 && r.prefixLen <= 32) || !Number.isInteger(r.prefixLen)) throw new InvalidArgumentError(`bad prefix length ${r.prefixLen}`);
    const route: Route = { prefix: (r.prefix & prefixMask(r.prefixLen)) >>> 0, prefixLen: r.prefixLen, gateway: r.gateway ?? 0, src: r.src, metric: r.metric ?? 0 };
    this.remove(route.prefix, route.prefixLen, route.gateway);
    this.routes.push(route);
    this.routes.sort((a, b) => b.prefixLen - a.prefixLen || a.metric - b.metric);
  }

  /** Removes the routes to prefix/len (through gateway, when given). Returns how many. */
  remove(prefix: number, prefixLen: number, gateway?: number): number {
    const p = (prefix & prefixMask(prefixLen)) >>> 0;
    const before = this.routes.length;
    this.routes = this.routes.filter((r) => !(r.prefix === p && r.prefixLen === prefixLen && (gateway === undefined || r.gateway === gateway)));
    return before - this.routes.length;
  }

  /** Longest-prefix match for dst; fills nextHop and src. Returns the route index or -1. */
  lookup(dst: number): number {
    const rs = this.routes;
    if (dst === 0xffffffff) {
      // The limited broadcast never goes to a gateway: it leaves on-link,
      // through the first connected network (a Stack has one interface).
      for (let i = 0; i < rs.length; i++) {
        if (rs[i]!.gateway === 0) { this.nextHop = dst; this.src = rs[i]!.src; return i; }
      }
      return -1;
    }
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i]!;
      if (((dst & prefixMask(r.prefixLen)) >>> 0) === r.prefix) {
        this.nextHop = r.gateway !== 0 ? r.gateway : dst;
        this.src = r.src;
        return i;
      }
    }
    return -1;
  }

  list(): readonly Route[] { return this.routes; }

  toString(): string {
    return this.routes.map((r) => `${ip4ToString(r.prefix)}/${r.prefixLen}${r.gateway ? ` via ${ip4ToString(r.gateway)}` : ' dev'} src ${ip4ToString(r.src)}${r.metric ? ` metric ${r.metric}` : ''}`).join('\n');
  }
}
