/**
 * The picker's footer: what the notebook costs now, how far to trust the
 * latency column, the kernel's answer, and the buttons that act: Attach (the
 * selection) and Detach, which asks first.
 */
import React from 'react';

import { detachQuestion } from './detach';
import { formatPrice, formatRunningMoney } from './format';
import { IKernelState, KernelModel } from './model';
import { IAction } from './selection';

export function PickerFooter(props: {
  model: KernelModel;
  state: IKernelState;
  action: IAction;
  error: string | null;
  confirmingDetach: boolean;
  onAction: () => void;
  onDetach: () => void;
  onConfirmDetach: () => void;
  onCancelDetach: () => void;
}): JSX.Element {
  const { model, state, action } = props;
  const total = model.costNow();
  return (
    <div className="ei-Picker-footer">
      {state.latency_accuracy && (
        <div className="ei-Picker-accuracy">
          Latency: {state.latency_accuracy}
        </div>
      )}
      <div className="ei-Picker-totals">
        Now: {formatPrice(state.cost.rate_per_hour)},{' '}
        {formatRunningMoney(total, state.cost.rate_per_hour)} so far
        {state.comparison
          ? ` · a whole GPU (${state.comparison.name}) costs ${formatPrice(
              state.comparison.price_per_hour
            )}`
          : ''}
      </div>
      <div className="ei-Picker-status" role="status" aria-live="polite">
        {model.phase === 'pending'
          ? 'Pending: the kernel answers when the running cell ends…'
          : ''}
      </div>
      {props.error && (
        <div className="ei-Picker-error" role="alert">
          Refused: {props.error}
        </div>
      )}
      {props.confirmingDetach && state.attached ? (
        <div
          className="ei-Picker-confirm"
          role="group"
          aria-label="Confirm detaching"
        >
          <span>{detachQuestion(state.attached.name)}</span>
          <button
            className="jp-mod-styled jp-mod-warn ei-Picker-confirmDetach"
            onClick={props.onConfirmDetach}
          >
            Detach
          </button>
          <button
            className="jp-mod-styled jp-mod-reject"
            onClick={props.onCancelDetach}
          >
            Keep it attached
          </button>
        </div>
      ) : (
        <div className="ei-Picker-actions">
          <button
            className={`jp-mod-styled ${
              action.kind === 'detach' ? 'jp-mod-warn' : 'jp-mod-accept'
            } ei-Picker-attach`}
            disabled={action.disabled}
            onClick={props.onAction}
          >
            {action.label}
          </button>
          <button
            className="jp-mod-styled jp-mod-reject ei-Picker-detach"
            disabled={!state.attached}
            aria-label="Detach the accelerator"
            onClick={props.onDetach}
          >
            Detach…
          </button>
          {action.why && <span className="ei-Picker-why">{action.why}</span>}
        </div>
      )}
    </div>
  );
}
