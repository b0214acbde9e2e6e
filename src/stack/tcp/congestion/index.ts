export type { CcState, CongestionControl, CongestionControlName } from './types.js';
export { NewReno } from './newreno.js';
export { Cubic } from './cubic.js';
import { NewReno } from './newreno.js';
import { Cubic } from './cubic.js';
import type { CongestionControl, CongestionControlName } from './types.js';

/** A fresh instance of the named algorithm (one per connection: they keep state). */
export function makeCongestionControl(name: CongestionControlName, initialSegments = 10): CongestionControl {
  switch (name) {
    case 'newreno': return new NewReno(initialSegments);
    case 'cubic': return new Cubic(initialSegments);
  }
}
