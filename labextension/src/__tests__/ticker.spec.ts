import { CostTicker, MAX_INTERPOLATION_SECONDS } from '../ticker';

const RATE = 3.6; // dollars per hour: $0.001 a second

/** A cost push of `total` at `at` ms, billing at RATE unless `metered` is false. */
function push(
  ticker: CostTicker,
  total: number,
  at: number,
  metered = true
): CostTicker {
  ticker.update({ total, rate_per_hour: RATE, metered }, at);
  return ticker;
}

describe('CostTicker', () => {
  it('adds the rate times the time since the push', () => {
    const ticker = push(new CostTicker(), 1, 0);
    expect(ticker.value(0)).toBeCloseTo(1, 12);
    expect(ticker.value(1000)).toBeCloseTo(1.001, 12);
    expect(ticker.value(2500)).toBeCloseTo(1.0025, 12);
  });

  it('stops a few seconds past the last push', () => {
    const ticker = push(new CostTicker(), 1, 0);
    const cap = 1 + 0.001 * MAX_INTERPOLATION_SECONDS;
    expect(ticker.value(60_000)).toBeCloseTo(cap, 12);
    expect(ticker.value(600_000)).toBeCloseTo(cap, 12);
  });

  it('never runs backwards when a push lands below what was shown', () => {
    const ticker = push(new CostTicker(), 1, 0);
    expect(ticker.value(1500)).toBeCloseTo(1.0015, 12);
    // The push says 1.001 at 1.5 s (it was sent a little earlier).
    push(ticker, 1.001, 1500);
    expect(ticker.value(1500)).toBeCloseTo(1.0015, 12);
    expect(ticker.value(2500)).toBeCloseTo(1.002, 12);
    expect(ticker.value(3000)).toBeCloseTo(1.0025, 12);
  });

  it('follows a real drop and a meter that does not run', () => {
    const ticker = push(new CostTicker(), 5, 0);
    expect(ticker.value(1000)).toBeCloseTo(5.001, 12);
    push(ticker, 0.5, 1000);
    expect(ticker.value(1000)).toBeCloseTo(0.5, 12);
    push(ticker, 0, 2000, false);
    expect(ticker.value(9000)).toBe(0);
  });
});
