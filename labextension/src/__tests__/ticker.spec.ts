import { CostTicker, MAX_INTERPOLATION_SECONDS } from '../ticker';

const RATE = 3.6; // dollars per hour: $0.001 a second

describe('CostTicker', () => {
  it('adds the rate times the time since the push', () => {
    const ticker = new CostTicker();
    ticker.update({ total: 1, rate_per_hour: RATE, metered: true }, 0);
    expect(ticker.value(0)).toBeCloseTo(1, 12);
    expect(ticker.value(1000)).toBeCloseTo(1.001, 12);
    expect(ticker.value(2500)).toBeCloseTo(1.0025, 12);
  });

  it('stops a few seconds past the last push', () => {
    const ticker = new CostTicker();
    ticker.update({ total: 1, rate_per_hour: RATE, metered: true }, 0);
    const cap = 1 + 0.001 * MAX_INTERPOLATION_SECONDS;
    expect(ticker.value(60_000)).toBeCloseTo(cap, 12);
    expect(ticker.value(600_000)).toBeCloseTo(cap, 12);
  });

  it('never runs backwards when a push lands below what was shown', () => {
    const ticker = new CostTicker();
    ticker.update({ total: 1, rate_per_hour: RATE, metered: true }, 0);
    expect(ticker.value(1500)).toBeCloseTo(1.0015, 12);
    // The push says 1.001 at 1.5 s (it was sent a little earlier).
    ticker.update({ total: 1.001, rate_per_hour: RATE, metered: true }, 1500);
    expect(ticker.value(1500)).toBeCloseTo(1.0015, 12);
    expect(ticker.value(2500)).toBeCloseTo(1.002, 12);
    expect(ticker.value(3000)).toBeCloseTo(1.0025, 12);
  });

  it('follows a real drop and a meter that does not run', () => {
    const ticker = new CostTicker();
    ticker.update({ total: 5, rate_per_hour: RATE, metered: true }, 0);
    expect(ticker.value(1000)).toBeCloseTo(5.001, 12);
    ticker.update({ total: 0.5, rate_per_hour: RATE, metered: true }, 1000);
    expect(ticker.value(1000)).toBeCloseTo(0.5, 12);
    ticker.update({ total: 0, rate_per_hour: RATE, metered: false }, 2000);
    expect(ticker.value(9000)).toBe(0);
  });
});
