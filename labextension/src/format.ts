/**
 * How figures read in the front end: one formatter per kind of figure.
 *
 * Mirrors the kernel's `ei_widgets/units.py` (bytes, counts, durations,
 * rates, percentages) and its money formatter, so one figure reads the same in
 * the picker, the status bar, the dashboard and `%ei_status`. The jest tests
 * check these against strings the Python formatters wrote into
 * `src/__tests__/fixtures/protocol.json`.
 *
 * Rounding follows Python: half to even, on the exact value of a float for
 * the units (as `f"{x:.2f}"` does) and on the decimal digits the kernel sent
 * for money (the kernel formats exact decimals).
 */

/* ------------------------------------------------------------------ */
/* Decimal digits, rounded as Python rounds                            */
/* ------------------------------------------------------------------ */

/** `digits × 10^exponent`, with a sign. */
interface IDecimal {
  negative: boolean;
  digits: string;
  exponent: number;
}

const DECIMAL_TEXT = /^(-?)(\d+)(?:\.(\d*))?(?:e([+-]?\d+))?$/i;

function parseDecimal(text: string): IDecimal {
  const match = DECIMAL_TEXT.exec(text);
  if (!match) {
    throw new Error(`not a decimal number: ${text}`);
  }
  const fraction = match[3] ?? '';
  const digits = (match[2] + fraction).replace(/^0+(?=\d)/, '');
  return {
    negative: match[1] === '-',
    digits,
    exponent: Number(match[4] ?? 0) - fraction.length
  };
}

/** The exact decimal value of a float (what Python's `:.Nf` rounds). */
function exactDecimal(value: number): IDecimal {
  const magnitude = Math.abs(value);
  // toFixed is exact below 1e21; 100 places hold every float above ~1e-30.
  const text = magnitude < 1e21 ? magnitude.toFixed(100) : String(magnitude);
  return { ...parseDecimal(text), negative: value < 0 || Object.is(value, -0) };
}

/** The shortest decimal that reads back as `value` (Python's `repr`). */
function shortestDecimal(value: number): IDecimal {
  return { ...parseDecimal(String(Math.abs(value))), negative: value < 0 };
}

/** Add one to a string of decimal digits. */
function increment(digits: string): string {
  const chars = digits.split('');
  let i = chars.length - 1;
  while (i >= 0 && chars[i] === '9') {
    chars[i] = '0';
    i -= 1;
  }
  if (i < 0) {
    return '1' + chars.join('');
  }
  chars[i] = String(Number(chars[i]) + 1);
  return chars.join('');
}

/** `d` rounded half to even at `places` decimals, as fixed-point text. */
function toFixedHalfEven(d: IDecimal, places: number): string {
  const shift = d.exponent + places;
  let units: string;
  if (shift >= 0) {
    units = d.digits + '0'.repeat(shift);
  } else {
    const cut = -shift;
    const padded = d.digits.padStart(cut + 1, '0');
    const keep = padded.slice(0, padded.length - cut);
    const rest = padded.slice(padded.length - cut);
    const first = rest.charCodeAt(0) - 48;
    const tail = /[1-9]/.test(rest.slice(1));
    const odd = (keep.charCodeAt(keep.length - 1) - 48) % 2 === 1;
    const up = first > 5 || (first === 5 && (tail || odd));
    units = up ? increment(keep) : keep;
  }
  units = units.replace(/^0+(?=\d)/, '').padStart(places + 1, '0');
  const whole = units.slice(0, units.length - places);
  const text = places > 0 ? `${whole}.${units.slice(whole.length)}` : whole;
  return (d.negative ? '-' : '') + text;
}

/** Thousands separators in the integer part: `1234567.5` -> `1,234,567.5`. */
function grouped(text: string): string {
  const match = /^(-?)(\d+)(.*)$/.exec(text);
  if (!match) {
    return text;
  }
  return match[1] + match[2].replace(/\B(?=(\d{3})+(?!\d))/g, ',') + match[3];
}

/** Python's `round(x)` for a float: half to even. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const diff = value - floor;
  if (diff > 0.5) {
    return floor + 1;
  }
  if (diff < 0.5) {
    return floor;
  }
  return floor % 2 === 0 ? floor : floor + 1;
}

/** Python's `str(x)` for what is not finite. */
function nonFinite(value: number): string {
  return Number.isNaN(value) ? 'nan' : value > 0 ? 'inf' : '-inf';
}

/* ------------------------------------------------------------------ */
/* units.py                                                            */
/* ------------------------------------------------------------------ */

const BINARY: ReadonlyArray<[string, number]> = [
  ['TiB', 2 ** 40],
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10]
];

const DECIMAL: ReadonlyArray<[string, number]> = [
  ['T', 1e12],
  ['G', 1e9],
  ['M', 1e6],
  ['k', 1e3]
];

/**
 * `value` with `digits` significant figures, without exponent or trailing
 * zeros; whole numbers from `10 ** digits` up keep all their digits, grouped.
 */
export function significant(value: number, digits = 3): string {
  if (value === 0 || !Number.isFinite(value)) {
    return value === 0 ? '0' : nonFinite(value);
  }
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  if (magnitude >= digits - 1) {
    return grouped(String(roundHalfEven(value)));
  }
  const text = toFixedHalfEven(exactDecimal(value), digits - 1 - magnitude);
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** Binary units, three significant figures: `1536` -> `1.5 KiB`. */
export function formatBytes(count: number): string {
  for (const [unit, size] of BINARY) {
    if (Math.abs(count) >= size) {
      return `${significant(count / size)} ${unit}`;
    }
  }
  return `${roundHalfEven(count)} B`;
}

/** Decimal prefixes, three significant figures: `25610153` -> `25.6 M`. */
export function formatCount(count: number): string {
  for (const [unit, size] of DECIMAL) {
    if (Math.abs(count) >= size) {
      return `${significant(count / size)} ${unit}`;
    }
  }
  return significant(count);
}

/** A duration in seconds, as milliseconds (seconds from ten on). */
export function formatMs(seconds: number): string {
  if (Math.abs(seconds) >= 10) {
    return `${significant(seconds)} s`;
  }
  return `${significant(seconds * 1e3)} ms`;
}

/** A throughput: `91.743` -> `91.7 inferences/s`. */
export function formatRate(perSecond: number, what = 'inferences'): string {
  return `${significant(perSecond)} ${what}/s`;
}

/** A fraction as a percentage, two significant figures below 10%. */
export function formatPercent(fraction: number): string {
  const percent = 100 * fraction;
  return `${significant(percent, Math.abs(percent) < 10 ? 2 : 3)}%`;
}

/* ------------------------------------------------------------------ */
/* Money                                                               */
/* ------------------------------------------------------------------ */

/** Significant figures of an amount of money. */
const MONEY_DIGITS = 4;

/**
 * Dollars: four significant figures, never fewer decimals than cents; zeros
 * past the cents dropped (`$1,234.50`, `$0.218`, `$0.05001`, `-$0.52`).
 */
export function formatMoney(dollars: number): string {
  if (!Number.isFinite(dollars)) {
    return Number.isNaN(dollars)
      ? '$NaN'
      : `$${dollars < 0 ? '-' : ''}Infinity`;
  }
  const sign = dollars < 0 ? '-' : '';
  const d = { ...shortestDecimal(dollars), negative: false };
  let places = 2;
  if (dollars !== 0) {
    // The power of ten of the first significant digit.
    const magnitude = d.digits.length - 1 + d.exponent;
    places = Math.max(2, MONEY_DIGITS - 1 - magnitude);
  }
  const [whole, fraction] = grouped(toFixedHalfEven(d, places)).split('.');
  const shown = fraction.slice(0, 2) + fraction.slice(2).replace(/0+$/, '');
  return `${sign}$${whole}.${shown}`;
}

/** A price per hour: `$0.34/h`. */
export function formatPrice(dollarsPerHour: number): string {
  return `${formatMoney(dollarsPerHour)}/h`;
}

/**
 * A running total that visibly moves each second at `dollarsPerHour`: as
 * many decimals as one second's cost needs (2 to 6). Only for the live meter;
 * every other amount reads as {@link formatMoney} does.
 */
export function formatRunningMoney(
  dollars: number,
  dollarsPerHour: number
): string {
  if (!Number.isFinite(dollars)) {
    return '–';
  }
  const perSecond = dollarsPerHour / 3600;
  if (!(perSecond > 0)) {
    return formatMoney(dollars);
  }
  const places = Math.min(6, Math.max(2, Math.ceil(-Math.log10(perSecond))));
  return `$${grouped(toFixedHalfEven(shortestDecimal(dollars), places))}`;
}

/* ------------------------------------------------------------------ */
/* Figures of the state                                                */
/* ------------------------------------------------------------------ */

/** A latency in milliseconds, or a dash when the kernel has no estimate. */
export function formatLatency(ms: number | null): string {
  return ms === null || !Number.isFinite(ms) ? '–' : formatMs(ms / 1000);
}

/** A memory size the state gives in GiB, or a dash. */
export function formatGib(gib: number | null): string {
  return gib === null || !Number.isFinite(gib)
    ? '–'
    : formatBytes(gib * 2 ** 30);
}

/** The text of anything thrown (an Error's message, else the value). */
export function errorText(reason: unknown): string {
  if (reason instanceof Error) {
    return reason.message;
  }
  const message = (reason as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(reason);
}
