/**
 * The running cost between the kernel's pushes.
 *
 * The kernel pushes the bill about once a second, and it stays the only
 * source of the figure: each push resets the base. Between pushes the cost
 * grows at the rate the kernel stated, so the front end adds
 * `rate × time since the push` and the meter ticks on the browser's own
 * second, smoothly, whatever the pushes' jitter (a push delayed by a busy
 * kernel would otherwise freeze the meter, then jump). It never extrapolates
 * more than {@link MAX_INTERPOLATION_SECONDS} past the last push (a kernel
 * that stopped answering does not keep billing on screen), and it never runs
 * backwards when a push lands a little below what was shown.
 */

/** How far past the last push the meter may run on its own. */
export const MAX_INTERPOLATION_SECONDS = 5;

export interface ICostBase {
  /** Dollars so far, at the moment of the push. */
  total: number;
  rate_per_hour: number;
  /** False when the kernel runs no meter: the total does not grow. */
  metered: boolean;
}

export class CostTicker {
  /** A push arrived at `nowMs`. */
  update(cost: ICostBase, nowMs: number): void {
    const perSecond = cost.metered ? Math.max(0, cost.rate_per_hour) / 3600 : 0;
    // A drop larger than the interpolation could have overshot is a real
    // change (a reset, another kernel's meter): follow it down.
    const slack = perSecond * MAX_INTERPOLATION_SECONDS + 1e-9;
    if (!cost.metered || cost.total < this._shown - slack) {
      this._shown = -Infinity;
    }
    this._total = cost.total;
    this._perSecond = perSecond;
    this._at = nowMs;
  }

  /** The cost to show at `nowMs`. */
  value(nowMs: number): number {
    const elapsed = Math.min(
      MAX_INTERPOLATION_SECONDS,
      Math.max(0, (nowMs - this._at) / 1000)
    );
    const value = Math.max(
      this._shown,
      this._total + this._perSecond * elapsed
    );
    this._shown = value;
    return value;
  }

  private _total = 0;
  private _perSecond = 0;
  private _at = 0;
  private _shown = -Infinity;
}
