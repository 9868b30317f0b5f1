/**
 * One row of the picker's list: an accelerator (or "None") with its figures
 * at the chosen precision. Clicking selects it; nothing is attached until
 * the Attach button is pressed.
 */
import React from 'react';

import { formatGib, formatLatency, formatPrice } from './format';
import { IAcceleratorInfo, IKernelState, Precision } from './model';
import { estimateAt, optionLabel } from './selection';

export function PickerRow(props: {
  rowKey: string;
  accelerator: IAcceleratorInfo | null;
  state: IKernelState;
  precision: Precision;
  selected: boolean;
  attached: boolean;
  pending: boolean;
  tabStop: boolean;
  onSelect: () => void;
  onFocus: () => void;
  onKeyDown: (event: React.KeyboardEvent) => void;
}): JSX.Element {
  const { accelerator: a, state, precision, selected, attached } = props;
  const estimate = a ? estimateAt(a, precision) : null;
  const classes = ['ei-Picker-option'];
  if (selected) {
    classes.push('ei-mod-selected');
  }
  if (attached) {
    classes.push('ei-mod-attached');
  }
  if (estimate?.fits === false) {
    classes.push('ei-mod-nofit');
  }
  if (props.pending) {
    classes.push('ei-mod-pending');
  }
  return (
    <div
      data-key={props.rowKey}
      className={classes.join(' ')}
      role="option"
      aria-selected={selected}
      aria-label={optionLabel(a, state, precision, { selected, attached })}
      tabIndex={props.tabStop ? 0 : -1}
      onClick={props.onSelect}
      onFocus={props.onFocus}
      onKeyDown={props.onKeyDown}
    >
      <span className="ei-Picker-name">
        {a ? a.name : 'None'}
        {attached && <span className="ei-Picker-badge">attached</span>}
        {props.pending ? ' (pending)' : ''}
      </span>
      <span>{a ? a.f32_tflops : '–'}</span>
      <span>{a ? a.f16_tflops : '–'}</span>
      <span>{a ? formatGib(a.memory_gib) : '–'}</span>
      <span>{formatPrice(a ? a.price_per_hour : 0)}</span>
      <span title={estimate?.reason ?? undefined}>
        {!estimate || estimate.fits === null
          ? '–'
          : estimate.fits
            ? 'yes'
            : 'no'}
      </span>
      <span className="ei-Picker-latency">
        {estimate ? formatLatency(estimate.latency_ms) : '–'}
      </span>
    </div>
  );
}
