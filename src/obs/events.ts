// Trace events over node:diagnostics_channel that cost nothing when nobody
// listens (undici's habit): publish*() checks `hasSubscribers` before it
// calls the builder, so the event object is only made when a subscriber
// exists. Builders are module-level functions taking the facts as arguments;
// no closure is created per call on the hot path.
//
// Channel names are "strata:<layer>:<event>", e.g. "strata:conntrack:new".

import dc from 'node:diagnostics_channel';

export class EventPublisher<E> {
  readonly channel: dc.Channel;
  constructor(readonly name: string) {
    this.channel = dc.channel(name);
  }
  /** True when at least one subscriber listens: guard any work that only feeds events. */
  get active(): boolean { return this.channel.hasSubscribers; }
  /** Publishes a ready event (for callers that checked `active` themselves). */
  publish(event: E): void { if (this.channel.hasSubscribers) this.channel.publish(event); }
  publish0(build: () => E): void {
    if (this.channel.hasSubscribers) this.channel.publish(build());
  }
  publish1<A>(build: (a: A) => E, a: A): void {
    if (this.channel.hasSubscribers) this.channel.publish(build(a));
  }
  publish2<A, B>(build: (a: A, b: B) => E, a: A, b: B): void {
    if (this.channel.hasSubscribers) this.channel.publish(build(a, b));
  }
  publish3<A, B, C>(build: (a: A, b: B, c: C) => E, a: A, b: B, c: C): void {
    if (this.channel.hasSubscribers) this.channel.publish(build(a, b, c));
  }
  subscribe(fn: (event: E) => void): void { dc.subscribe(this.name, fn as (m: unknown, name: string | symbol) => void); }
  unsubscribe(fn: (event: E) => void): boolean { return dc.unsubscribe(this.name, fn as (m: unknown, name: string | symbol) => void); }
}
