import { describe, expect, test } from 'vitest';
import { Timer, TimerWheel } from '../src/stack/timers.js';
import { Prng } from '../src/util/prng.js';

describe('TimerWheel', () => {
  test('fires each timer once, at or after its time, in time order', () => {
    const w = new TimerWheel({ slots: 64 });
    const log: [string, number][] = [];
    const a = new Timer((now) => log.push(['a', now]));
    const b = new Timer((now) => log.push(['b', now]));
    w.arm(a, 10.5);
    w.arm(b, 3);
    expect(w.nextExpiry()).toBe(3);
    expect(w.advance(2.9)).toBe(0);
    expect(w.advance(3)).toBe(1);
    expect(w.advance(10.4)).toBe(0);
    expect(w.nextExpiry()).toBe(10.5);
    expect(w.advance(11)).toBe(1);
    expect(log).toEqual([['b', 3], ['a', 11]]);
    expect(w.size).toBe(0);
    expect(w.nextExpiry()).toBeUndefined();
  });

  test('re-arm moves, cancel disarms, callbacks may re-arm without recursion', () => {
    const w = new TimerWheel({ slots: 16 });
    let fires = 0;
    const t: Timer = new Timer((now) => { fires++; w.arm(t, now); });
    w.arm(t, 5);
    w.arm(t, 7);
    expect(w.advance(6)).toBe(0);
    expect(w.advance(7)).toBe(1);
    expect(fires).toBe(1);
    expect(t.armed).toBe(true); // re-armed for 7: fires on the next advance, not recursively
    expect(w.advance(7)).toBe(1);
    w.cancel(t);
    expect(w.advance(100)).toBe(0);
    expect(w.size).toBe(0);
  });

  test('timers beyond one revolution and large clock jumps', () => {
    const w = new TimerWheel({ slots: 8 });
    const got: number[] = [];
    const ts = [100, 3, 50, 9, 8.5, 1000].map((at) => { const t = new Timer(() => got.push(at)); w.arm(t, at); return t; });
    expect(w.nextExpiry()).toBe(3);
    w.advance(60);
    expect(got).toEqual([3, 8.5, 9, 50]);
    expect(w.nextExpiry()).toBe(100);
    w.advance(5000);
    expect(got).toEqual([3, 8.5, 9, 50, 100, 1000]);
    expect(ts.every((t) => !t.armed)).toBe(true);
  });

  test('matches a reference model under random arm/cancel/advance (seeded)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rng = new Prng(seed);
      const w = new TimerWheel({ slots: 32, tickMs: 1 });
      const model = new Map<number, number>(); // id -> at
      const fired: number[] = [];
      const timers = Array.from({ length: 50 }, (_, id) => new Timer(() => fired.push(id)));
      let now = 0;
      for (let step = 0; step < 3000; step++) {
        const op = rng.int(10);
        const id = rng.int(50);
        if (op < 5) { const at = now + rng.float() * 200; w.arm(timers[id]!, at); model.set(id, at); }
        else if (op < 7) { w.cancel(timers[id]!); model.delete(id); }
        else {
          now += rng.float() * 40;
          fired.length = 0;
          w.advance(now);
          const expected = [...model.entries()].filter(([, at]) => at <= now).sort((x, y) => x[1] - y[1] || x[0] - y[0]).map(([i]) => i);
          for (const i of expected) model.delete(i);
          expect([...fired].sort((x, y) => x - y)).toEqual([...expected].sort((x, y) => x - y));
        }
        const next = w.nextExpiry();
        const minAt = Math.min(...model.values());
        expect(next).toBe(model.size ? minAt : undefined);
        expect(w.size).toBe(model.size);
      }
    }
  });
});
