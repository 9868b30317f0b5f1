/**
 * The accelerator picker: a dialog over one notebook's kernel. Its parts are
 * in their own files: the phases before the kernel answers (PickerPhase),
 * the header (PickerHeader), the model being profiled (PickerProfiling),
 * one row (PickerRow), the footer with the buttons (PickerFooter), the
 * list's keyboard use (useListKeyboard), the selection, first model and
 * focus hooks (usePicker) and what a selection means (selection.ts).
 */
import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import React, { useEffect, useRef, useState } from 'react';

import { KernelConnector } from './connector';
import { errorText } from './format';
import { useClock, useModel } from './hooks';
import { IAcceleratorInfo, IKernelState } from './model';
import { PickerFooter } from './PickerFooter';
import { PickerHeader } from './PickerHeader';
import { PickerPhase } from './PickerPhase';
import { PickerProfiling } from './PickerProfiling';
import { PickerRow } from './PickerRow';
import { NONE_KEY, primaryAction } from './selection';
import { IViewSettings } from './settings';
import { useListKeyboard } from './useListKeyboard';
import { useJudgeFirstModel, useKeepFocus, useSelection } from './usePicker';

interface IRow {
  key: string;
  accelerator: IAcceleratorInfo | null;
}

function rowsOf(state: IKernelState | null): IRow[] {
  return state
    ? [
        { key: NONE_KEY, accelerator: null },
        ...state.accelerators.map(a => ({ key: a.name, accelerator: a }))
      ]
    : [];
}

function PickerComponent(props: {
  connector: KernelConnector;
  settings: IViewSettings;
}): JSX.Element {
  const { connector, settings } = props;
  const model = connector.model;
  useModel(model, settings.refreshInterval);
  const phase = model.phase;
  const state = model.state;
  useClock(!!state?.cost.metered, settings.refreshInterval);
  const [selection, select] = useSelection(state);
  const [localError, setLocalError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const rows = rowsOf(state);
  const keyboard = useListKeyboard(
    rows.map(r => r.key),
    selection?.key ?? NONE_KEY,
    key => selection && select({ ...selection, key })
  );

  const act = (request: () => void) => {
    setLocalError(null);
    try {
      request();
    } catch (reason) {
      setLocalError(errorText(reason));
    }
  };

  useJudgeFirstModel(model, state, () =>
    act(() => model.setModel(state!.models[0].variable))
  );
  const rootRef = useRef<HTMLDivElement>(null);
  useKeepFocus(
    rootRef,
    keyboard.listRef,
    keyboard.activeKey,
    rows.length > 0,
    phase
  );

  // Asking before a detach: the safe answer gets the focus.
  useEffect(() => {
    if (confirming) {
      rootRef.current
        ?.querySelector<HTMLElement>('.ei-Picker-confirm .jp-mod-reject')
        ?.focus();
    }
  }, [confirming]);

  if (phase === 'no-kernel' || phase === 'connecting' || !state || !selection) {
    return (
      <div className="ei-Picker" data-phase={phase} ref={rootRef} tabIndex={-1}>
        <PickerPhase connector={connector} phase={phase} />
      </div>
    );
  }

  const pendingFor = (name: string | null) =>
    model.pending.some(p =>
      name === null
        ? p.type === 'detach'
        : p.type === 'attach' && p.target === name
    );
  const attachedKey = state.attached ? state.attached.name : NONE_KEY;
  const action = primaryAction(selection, state);
  const detach = () => {
    setConfirming(false);
    act(() => model.detach());
  };

  return (
    <div className="ei-Picker" data-phase={phase} ref={rootRef} tabIndex={-1}>
      <PickerHeader
        state={state}
        precision={selection.precision}
        priceRegion={settings.priceRegion}
        onInstance={name => act(() => model.setInstance(name))}
        onModel={variable => act(() => model.setModel(variable))}
        onSeqLen={seqLen => act(() => model.setSeqLen(seqLen))}
        onPrecision={precision => select({ ...selection, precision })}
      />
      <PickerProfiling state={state} />
      <div className="ei-Picker-columns" aria-hidden="true">
        <span>Accelerator</span>
        <span>F32 TFLOPS</span>
        <span>F16 TFLOPS</span>
        <span>Memory</span>
        <span>$/h</span>
        <span>Fits</span>
        <span>Latency ({selection.precision})</span>
      </div>
      <div
        className="ei-Picker-list"
        role="listbox"
        aria-label="Elastic Inference accelerator"
        ref={keyboard.listRef}
      >
        {rows.map((row, index) => (
          <PickerRow
            key={row.key}
            rowKey={row.key}
            accelerator={row.accelerator}
            state={state}
            precision={selection.precision}
            selected={row.key === selection.key}
            attached={row.key === attachedKey && state.attached !== null}
            pending={pendingFor(row.accelerator ? row.accelerator.name : null)}
            tabStop={row.key === keyboard.activeKey}
            onSelect={() => {
              keyboard.onFocus(row.key);
              select({ ...selection, key: row.key });
            }}
            onFocus={() => keyboard.onFocus(row.key)}
            onKeyDown={event => keyboard.onKeyDown(event, index)}
          />
        ))}
      </div>
      <PickerFooter
        model={model}
        state={state}
        action={action}
        error={model.error ?? localError}
        confirmingDetach={confirming}
        onAction={() => {
          if (action.kind === 'detach') {
            setConfirming(true);
          } else {
            act(() => model.attach(selection.key, selection.precision));
          }
        }}
        onDetach={() => setConfirming(true)}
        onConfirmDetach={detach}
        onCancelDetach={() => setConfirming(false)}
      />
    </div>
  );
}

class PickerBody extends ReactWidget {
  constructor(
    private _connector: KernelConnector,
    private _settings: IViewSettings
  ) {
    super();
    this.addClass('ei-PickerBody');
  }

  render(): JSX.Element {
    return (
      <PickerComponent connector={this._connector} settings={this._settings} />
    );
  }
}

let openDialog: Dialog<unknown> | null = null;

/** Open the picker for one notebook; resolves when it is closed. */
export async function openPicker(
  connector: KernelConnector,
  settings: IViewSettings
): Promise<void> {
  if (openDialog) {
    return;
  }
  if (connector.model.phase === 'not-loaded') {
    // The user may have loaded it meanwhile: look again.
    connector.reconnect();
  }
  const dialog = new Dialog({
    title: `Elastic Inference accelerator — ${connector.label}`,
    body: new PickerBody(connector, settings),
    buttons: [
      Dialog.cancelButton({ label: 'Close', ariaLabel: 'Close the picker' })
    ],
    hasClose: true,
    // Only one of these exists at a time.
    focusNodeSelector: '.ei-Picker-option[tabindex="0"], .ei-Picker-load'
  });
  dialog.addClass('ei-PickerDialog');
  openDialog = dialog;
  try {
    await dialog.launch();
  } finally {
    openDialog = null;
    connector.model.clearError();
  }
}

/** Open the picker as a promise that never rejects (for click handlers). */
export function openPickerSafely(
  connector: KernelConnector,
  settings: IViewSettings
): void {
  openPicker(connector, settings).catch(reason =>
    console.error('ei-widgets: picker failed', reason)
  );
}

/** A plain dialog reporting a problem. */
export function showProblem(title: string, message: string): void {
  void showDialog({
    title,
    body: message,
    buttons: [Dialog.okButton({ label: 'OK' })]
  });
}
