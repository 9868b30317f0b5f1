/**
 * What the picker shows before the kernel can be asked anything: no kernel,
 * waiting for its answer, or ei_widgets not loaded (with the load button).
 */
import React, { useState } from 'react';

import { KernelConnector } from './connector';
import { errorText } from './format';
import { LOAD_CODE, Phase } from './model';

export function PickerPhase(props: {
  connector: KernelConnector;
  phase: Phase;
}): JSX.Element {
  const { connector, phase } = props;
  const [loading, setLoading] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);

  if (phase === 'no-kernel') {
    return (
      <p>
        This notebook has no running kernel. Start one to pick an accelerator.
      </p>
    );
  }
  if (phase === 'connecting') {
    return (
      <p role="status">
        Waiting for the kernel to answer (it answers when the running cell
        ends)…
      </p>
    );
  }
  const load = async () => {
    setLoading(true);
    setLoadError(null);
    try {
      await connector.loadExtension();
    } catch (reason) {
      setLoadError(errorText(reason));
    } finally {
      setLoading(false);
    }
  };
  const error = loadError ?? connector.model.error;
  return (
    <>
      <p>
        ei_widgets is not loaded in this kernel. Load it to attach a simulated
        Elastic Inference accelerator.
      </p>
      <button
        className="jp-mod-styled jp-mod-accept ei-Picker-load"
        onClick={load}
        disabled={loading}
        aria-label={`Load ei_widgets in this kernel (runs ${LOAD_CODE})`}
      >
        {loading ? 'Loading…' : `Load ei_widgets (${LOAD_CODE})`}
      </button>
      {error && (
        <p className="ei-Picker-error" role="alert">
          {error}
        </p>
      )}
    </>
  );
}
