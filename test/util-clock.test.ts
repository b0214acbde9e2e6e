// turnClock: performance.now() read once per task, refreshed by the next.
import { describe, expect, it } from 'vitest';
import { turnClock, monotonicClock } from '../src/util/clock.js';

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
}

describe('turnClock', () => {
  it('gives one value for the whole task, however long it runs', () => {
    const a = turnClock.now();
    spin(3);
    const b = turnClock.now();
    expect(b).toBe(a);
    // The real clock moved on meanwhile.
    expect(monotonicClock.now() - a).toBeGreaterThanOrEqual(3);
  });

  it('reads the time anew in the next task, and the value never goes back', async () => {
    const a = turnClock.now();
    spin(2);
    await new Promise<void>((r) => setImmediate(r));
    const b = turnClock.now();
    expect(b - a).toBeGreaterThanOrEqual(2);
    expect(b).toBeLessThanOrEqual(monotonicClock.now());
  });

  it('is refreshed after the microtask checkpoint, so promise continuations see a new time', async () => {
    const a = turnClock.now();
    spin(2);
    await Promise.resolve();
    await Promise.resolve();
    expect(turnClock.now() - a).toBeGreaterThanOrEqual(2);
  });
});
