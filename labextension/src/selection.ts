/**
 * What the picker's selection means, free of any DOM so it can be tested.
 *
 * Selecting a row only selects; the Attach button carries it out. The
 * selection starts as what is attached (row and precision) and follows the
 * kernel whenever the attachment changes from anywhere; Attach is disabled
 * while it would change nothing; choosing "None" turns it into a Detach that
 * asks first. The dashboard's Accelerator tab behaves the same way.
 */
import { formatGib, formatLatency, formatPrice } from './format';
import { IAcceleratorInfo, IEstimate, IKernelState, Precision } from './model';

/** The key of the "No accelerator" row. */
export const NONE_KEY = '__none__';

export interface ISelection {
  /** An accelerator's name, or {@link NONE_KEY}. */
  key: string;
  precision: Precision;
}

/** The selection that mirrors what is attached. */
export function attachedSelection(state: IKernelState): ISelection {
  const attached = state.attached;
  return {
    key: attached ? attached.name : NONE_KEY,
    precision: attached?.precision === 'fp16' ? 'fp16' : 'fp32'
  };
}

/** Changes whenever the attachment does (from the picker, a magic, anywhere). */
export function attachmentIdentity(state: IKernelState | null): string {
  const attached = state?.attached;
  return attached
    ? `${attached.name}|${attached.precision}|${attached.since}`
    : 'none';
}

/** The estimate of `accelerator` at `precision`. */
export function estimateAt(
  accelerator: IAcceleratorInfo,
  precision: Precision
): IEstimate {
  return accelerator.estimates[precision];
}

/** What the picker's main button does for a selection. */
export interface IAction {
  kind: 'attach' | 'detach';
  label: string;
  disabled: boolean;
  /** Why it is disabled (shown next to it), or null. */
  why: string | null;
}

export function primaryAction(
  selection: ISelection,
  state: IKernelState
): IAction {
  const attached = state.attached;
  if (selection.key === NONE_KEY) {
    return attached
      ? {
          kind: 'detach',
          label: `Detach ${attached.name}…`,
          disabled: false,
          why: null
        }
      : {
          kind: 'attach',
          label: 'Attach',
          disabled: true,
          why: 'Nothing is attached: select an accelerator to attach one.'
        };
  }
  const label = `Attach ${selection.key} (${selection.precision})`;
  if (
    attached &&
    attached.name === selection.key &&
    attached.precision === selection.precision
  ) {
    return {
      kind: 'attach',
      label,
      disabled: true,
      why: `${selection.key} at ${selection.precision} is attached.`
    };
  }
  const accelerator = state.accelerators.find(a => a.name === selection.key);
  if (!accelerator) {
    return {
      kind: 'attach',
      label,
      disabled: true,
      why: `${selection.key} is not in the kernel's catalog.`
    };
  }
  const estimate = estimateAt(accelerator, selection.precision);
  if (estimate.fits === false) {
    return {
      kind: 'attach',
      label,
      disabled: true,
      why:
        `The model does not fit ${selection.key} at ${selection.precision}` +
        (estimate.reason ? `: ${estimate.reason}.` : '.')
    };
  }
  return { kind: 'attach', label, disabled: false, why: null };
}

/** The accessible name of one row. */
export function optionLabel(
  accelerator: IAcceleratorInfo | null,
  state: IKernelState,
  precision: Precision,
  flags: { selected: boolean; attached: boolean }
): string {
  const marks =
    (flags.attached ? ', attached' : '') + (flags.selected ? ', selected' : '');
  if (!accelerator) {
    return `No accelerator${marks}: the instance alone, ${formatPrice(
      state.instance.price_per_hour
    )}`;
  }
  const estimate = estimateAt(accelerator, precision);
  const fit =
    estimate.fits === null
      ? 'fit unknown'
      : estimate.fits
        ? 'fits the model'
        : `does not fit${estimate.reason ? `: ${estimate.reason}` : ''}`;
  return (
    `${accelerator.name}${marks}: ${accelerator.f32_tflops} F32 TFLOPS, ` +
    `${accelerator.f16_tflops} F16 TFLOPS, ${formatGib(accelerator.memory_gib)}, ` +
    `${formatPrice(accelerator.price_per_hour)}, ${fit}, ` +
    `estimated latency at ${precision} ${formatLatency(estimate.latency_ms)}`
  );
}
