/**
 * The profile the kernel makes for the model chosen (or its new sequence
 * length) in the background: its stage and progress while it runs, why it
 * failed when it did.
 */
import { ProgressBar } from '@jupyterlab/statusbar';
import React from 'react';

import { IKernelState, profilingStatus } from './model';

export function PickerProfiling(props: { state: IKernelState }): JSX.Element {
  const profiling = props.state.profiling;
  const status = profiling ? profilingStatus(profiling) : null;
  return (
    <div className="ei-Picker-profiling" role="status" aria-live="polite">
      {status &&
        (status.failed ? (
          <span className="ei-Picker-error">{status.text}</span>
        ) : (
          <>
            <span>{status.text}</span>
            {status.percentage !== null && (
              <ProgressBar percentage={status.percentage} width={120} />
            )}
          </>
        ))}
    </div>
  );
}
