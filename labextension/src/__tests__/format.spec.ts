import {
  errorText,
  formatBytes,
  formatCount,
  formatGib,
  formatLatency,
  formatMoney,
  formatMs,
  formatPercent,
  formatPrice,
  formatRate,
  formatRunningMoney,
  significant
} from '../format';
import { FormatKind, formatted } from './fixture';

const FORMATTERS: Record<FormatKind, (value: number) => string> = {
  money: formatMoney,
  bytes: formatBytes,
  count: formatCount,
  ms: formatMs,
  rate: v => formatRate(v),
  percent: formatPercent
};

describe('format.ts reads every figure as the kernel does', () => {
  for (const kind of Object.keys(FORMATTERS) as FormatKind[]) {
    it(`formats ${kind} like ei_widgets`, () => {
      const samples = formatted(kind);
      expect(samples.length).toBeGreaterThan(5);
      const ours = samples.map(([value]) => [value, FORMATTERS[kind](value)]);
      expect(ours).toEqual(samples);
    });
  }
});

describe('format.ts', () => {
  it('rounds half to even, as Python does', () => {
    expect(significant(0.125, 2)).toBe('0.12');
    expect(significant(0.375, 2)).toBe('0.38');
    expect(significant(2.5, 1)).toBe('2');
    expect(significant(3.5, 1)).toBe('4');
    expect(significant(-2.5, 1)).toBe('-2');
    expect(formatMoney(0.125)).toBe('$0.125');
    expect(formatMoney(1.125)).toBe('$1.125');
    expect(formatMoney(10.125)).toBe('$10.12');
    expect(formatMoney(10.135)).toBe('$10.14');
  });

  it('says what is not a number', () => {
    expect(significant(Infinity)).toBe('inf');
    expect(significant(NaN)).toBe('nan');
    expect(formatMoney(NaN)).toBe('$NaN');
    expect(formatLatency(null)).toBe('–');
    expect(formatGib(null)).toBe('–');
  });

  it('shows the state’s figures through the same formatters', () => {
    expect(formatLatency(13.5)).toBe('13.5 ms');
    expect(formatLatency(53.3)).toBe('53.3 ms');
    expect(formatGib(4)).toBe('4 GiB');
    expect(formatPrice(0.336)).toBe('$0.336/h');
  });

  it('gives a running total enough decimals to move every second', () => {
    // $0.05/h is $0.0000139 a second: five decimals move each second.
    expect(formatRunningMoney(0.0123, 0.05)).toBe('$0.01230');
    expect(formatRunningMoney(0.0123 + 0.05 / 3600, 0.05)).toBe('$0.01231');
    // $0.386/h is $0.000107 a second: four decimals.
    expect(formatRunningMoney(1234.5, 0.386)).toBe('$1,234.5000');
    // Nothing ticking: the ordinary format.
    expect(formatRunningMoney(0.0123, 0)).toBe(formatMoney(0.0123));
    expect(formatRunningMoney(NaN, 1)).toBe('–');
  });

  it('reads what was thrown', () => {
    expect(errorText(new Error('refused'))).toBe('refused');
    expect(errorText({ message: 'from a promise' })).toBe('from a promise');
    expect(errorText('plain')).toBe('plain');
    expect(errorText(null)).toBe('null');
  });
});
