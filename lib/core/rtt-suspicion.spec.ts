import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SUSPICION } from './monitor-options.js';
import { deviationsForPhi, phiAt, RttSuspicion } from './rtt-suspicion.js';

describe('RttSuspicion', () => {
  it('inverts phi: phi 8 is about 5.2 standard deviations, phi 1 about 1.3 (logistic approximation)', () => {
    assert.ok(Math.abs(phiAt(deviationsForPhi(8)) - 8) < 1e-6);
    assert.ok(Math.abs(deviationsForPhi(8) - 5.23) < 0.05, `${deviationsForPhi(8)}`);
    assert.ok(Math.abs(deviationsForPhi(1) - 1.3) < 0.1, `${deviationsForPhi(1)}`);
  });

  it('waits for minSamples, floors the deviation, and follows a change within about its window', () => {
    const suspicion = new RttSuspicion({ ...DEFAULT_SUSPICION, windowSize: 10, minSamples: 5 });
    for (let i = 0; i < 4; i++) suspicion.record(10);
    assert.equal(suspicion.suspectAfterMs(), undefined);
    suspicion.record(10);
    const floored = 10 + 50 * deviationsForPhi(8);
    assert.ok(Math.abs((suspicion.suspectAfterMs() ?? 0) - floored) < 1e-6, 'a steady 10 ms: the floor of 50 ms applies');
    for (let i = 0; i < 40; i++) suspicion.record(i % 2 ? 100 : 300); // mean 200, deviation 100
    assert.ok(Math.abs((suspicion.meanMs ?? 0) - 200) < 20, `mean ${suspicion.meanMs}`);
    const expected = 200 + 100 * deviationsForPhi(8);
    assert.ok(Math.abs((suspicion.suspectAfterMs() ?? 0) - expected) / expected < 0.1, `${suspicion.suspectAfterMs()} near ${expected}`);
  });
});
