/**
 * The picker's header: the notebook instance, the model fits are judged by
 * (any of the models found in the kernel) with its sequence length when it
 * has one, and the precision the rows and the Attach button use.
 */
import React from 'react';

import { formatGib, formatPrice } from './format';
import { IKernelState, PRECISIONS, Precision, isProfiling } from './model';

export function PickerHeader(props: {
  state: IKernelState;
  precision: Precision;
  priceRegion: string;
  onInstance: (name: string) => void;
  onModel: (variable: string) => void;
  onSeqLen: (seqLen: number) => void;
  onPrecision: (precision: Precision) => void;
}): JSX.Element {
  const { state, precision, priceRegion } = props;
  const profiling = isProfiling(state);
  // While a model is being profiled, the select shows it: it is the choice.
  const chosen = profiling ? state.profiling!.variable : state.model?.variable;
  const sequence = state.sequence;
  const instances =
    state.instances.length > 0 ? state.instances : [state.instance];
  const judged = state.model;
  const models = state.models.map(m => ({
    variable: m.variable,
    text: `${m.variable} (${m.kind})`,
    summary: m.summary
  }));
  if (judged && !models.some(m => m.variable === judged.variable)) {
    // Chosen with %ei_inspect or the dashboard from outside the variables.
    models.unshift({
      variable: judged.variable,
      text: `${judged.variable} (${judged.kind})`,
      summary: ''
    });
  }
  return (
    <div className="ei-Picker-header">
      <label className="ei-Picker-instance">
        <span>Notebook instance</span>
        <select
          aria-label="Notebook instance type"
          value={state.instance.name}
          onChange={event => props.onInstance(event.target.value)}
        >
          {instances.map(i => (
            <option key={i.name} value={i.name}>
              {i.name} — {formatPrice(i.price_per_hour)}
              {i.vcpus !== null ? `, ${i.vcpus} vCPU` : ''}
              {i.memory_gib !== null ? `, ${formatGib(i.memory_gib)}` : ''}
            </option>
          ))}
        </select>
      </label>
      <div
        className="ei-Picker-model"
        title="Fit and latency are estimated by the simulator for this model"
      >
        {models.length > 0 ? (
          <label>
            <span>Model</span>
            <select
              aria-label="Model the fit and latency are estimated for"
              value={chosen ?? ''}
              onChange={event => props.onModel(event.target.value)}
            >
              {!chosen && <option value="">Choose a model…</option>}
              {models.map(m => (
                <option key={m.variable} value={m.variable} title={m.summary}>
                  {m.text}
                </option>
              ))}
            </select>
          </label>
        ) : (
          'No model in the kernel’s variables: fit and latency are unknown'
        )}
        {sequence && (
          <label title="Sequence length the fit and latency are estimated at">
            <span>Tokens</span>
            <select
              className="ei-Picker-seqLen"
              aria-label="Sequence length (tokens) the fit and latency are estimated at"
              value={String(sequence.seq_len)}
              disabled={profiling || sequence.lengths.length < 2}
              onChange={event => props.onSeqLen(Number(event.target.value))}
            >
              {sequence.lengths.map(n => (
                <option key={n} value={String(n)}>
                  {n}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      <div
        className="ei-Picker-precision"
        role="group"
        aria-label="Precision of the latency column and of Attach"
      >
        <span>Precision</span>
        {PRECISIONS.map(p => (
          <button
            key={p}
            className="jp-mod-styled ei-Picker-precisionButton"
            aria-pressed={p === precision}
            data-precision={p}
            onClick={() => props.onPrecision(p)}
          >
            {p.toUpperCase()}
          </button>
        ))}
      </div>
      <div className="ei-Picker-region">
        Prices: SageMaker on-demand, {priceRegion}
      </div>
    </div>
  );
}
