/**
 * The status-bar (or toolbar) item and the accelerator picker.
 */
import { Dialog, ReactWidget, showDialog } from '@jupyterlab/apputils';
import React, { useEffect, useRef, useState } from 'react';

import { KernelConnector } from './connector';
import {
  IAcceleratorInfo,
  IKernelState,
  KernelModel,
  LOAD_CODE,
  formatLatency,
  formatMemory,
  formatMoney,
  formatRate
} from './model';

/** View settings, from the settings registry. */
export interface IViewSettings {
  /** Price region shown with the prices. */
  priceRegion: string;
  /** Seconds between refreshes of the ticking cost in the views. */
  refreshInterval: number;
}

export const DEFAULT_VIEW_SETTINGS: IViewSettings = {
  priceRegion: 'us-east-1',
  refreshInterval: 1
};

/**
 * Re-render on model changes: at once when the phase changes, otherwise at
 * most once per `intervalSeconds` (the kernel pushes the cost every second).
 */
function useModel(model: KernelModel | null, intervalSeconds: number): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!model) {
      return;
    }
    let lastPhase = model.phase;
    let last = 0;
    let timer: number | null = null;
    const interval = Math.max(0.2, intervalSeconds) * 1000;
    const render = () => {
      timer = null;
      last = Date.now();
      lastPhase = model.phase;
      setTick(t => t + 1);
    };
    const unsubscribe = model.changed(() => {
      if (model.phase !== lastPhase || Date.now() - last >= interval) {
        if (timer !== null) {
          window.clearTimeout(timer);
        }
        render();
      } else if (timer === null) {
        timer = window.setTimeout(render, interval - (Date.now() - last));
      }
    });
    render();
    return () => {
      unsubscribe();
      if (timer !== null) {
        window.clearTimeout(timer);
      }
    };
  }, [model, intervalSeconds]);
  return tick;
}

/* ------------------------------------------------------------------ */
/* Status item                                                         */
/* ------------------------------------------------------------------ */

function StatusComponent(props: {
  connector: KernelConnector | null;
  settings: IViewSettings;
  onOpen: (connector: KernelConnector) => void;
}): JSX.Element {
  const { connector, settings, onOpen } = props;
  const model = connector ? connector.model : null;
  useModel(model, settings.refreshInterval);
  const summary = model
    ? model.summary()
    : {
        phase: 'no-kernel',
        label: 'EI: no notebook',
        title: 'Elastic Inference: open a notebook to pick an accelerator'
      };
  const open = () => {
    if (connector) {
      onOpen(connector);
    }
  };
  return (
    <div
      className="ei-StatusItem jp-StatusBar-TextItem"
      role="button"
      tabIndex={0}
      aria-haspopup="dialog"
      aria-label={summary.title}
      title={summary.title}
      data-phase={summary.phase}
      onClick={open}
      onKeyDown={event => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          open();
        }
      }}
    >
      <span className="ei-StatusItem-dot" aria-hidden="true" />
      <span className="ei-StatusItem-label">{summary.label}</span>
    </div>
  );
}

/** The item showing one notebook's accelerator, rate and cost. */
export class StatusItem extends ReactWidget {
  constructor(options: {
    onOpen: (connector: KernelConnector) => void;
    settings: IViewSettings;
    connector?: KernelConnector | null;
  }) {
    super();
    this._onOpen = options.onOpen;
    this._settings = options.settings;
    this._connector = options.connector ?? null;
    this.addClass('ei-StatusItemWidget');
  }

  get connector(): KernelConnector | null {
    return this._connector;
  }

  set connector(value: KernelConnector | null) {
    if (value !== this._connector) {
      this._connector = value;
      this.update();
    }
  }

  set settings(value: IViewSettings) {
    this._settings = value;
    this.update();
  }

  render(): JSX.Element {
    return (
      <StatusComponent
        connector={this._connector}
        settings={this._settings}
        onOpen={this._onOpen}
      />
    );
  }

  private _connector: KernelConnector | null;
  private _settings: IViewSettings;
  private _onOpen: (connector: KernelConnector) => void;
}

/* ------------------------------------------------------------------ */
/* Picker                                                              */
/* ------------------------------------------------------------------ */

interface IOption {
  key: string;
  /** null is "No accelerator". */
  accelerator: IAcceleratorInfo | null;
}

function optionLabel(
  option: IOption,
  state: IKernelState,
  attached: boolean
): string {
  const a = option.accelerator;
  if (!a) {
    return `No accelerator${attached ? ', selected' : ''}: the instance alone, ${formatRate(
      state.instance.price_per_hour
    )}`;
  }
  const fit =
    a.fits === null
      ? 'fit unknown'
      : a.fits
        ? 'fits the model'
        : `does not fit${a.reason ? `: ${a.reason}` : ''}`;
  return (
    `${a.name}${attached ? ', attached' : ''}: ${a.f32_tflops} F32 TFLOPS, ` +
    `${a.f16_tflops} F16 TFLOPS, ${formatMemory(a.memory_gib)}, ` +
    `${formatRate(a.price_per_hour)}, ${fit}, estimated latency ${formatLatency(
      a.latency_ms
    )}`
  );
}

function PickerComponent(props: {
  connector: KernelConnector;
  settings: IViewSettings;
}): JSX.Element {
  const { connector, settings } = props;
  const model = connector.model;
  useModel(model, settings.refreshInterval);
  const listRef = useRef<HTMLDivElement>(null);
  const [focusKey, setFocusKey] = useState<string | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  const phase = model.phase;
  const state = model.state;

  const options: IOption[] = state
    ? [
        { key: '__none__', accelerator: null },
        ...state.accelerators.map(a => ({ key: a.name, accelerator: a }))
      ]
    : [];
  const attachedKey = state?.attached ? state.attached.name : '__none__';
  const activeKey =
    focusKey && options.some(o => o.key === focusKey) ? focusKey : attachedKey;

  // Keep the keyboard focus inside the picker as its content changes: on the
  // current choice when the list appears, else on the first control.
  const rootRef = useRef<HTMLDivElement>(null);
  const hasList = options.length > 0;
  const hadList = useRef(false);
  useEffect(() => {
    const listAppeared = hasList && !hadList.current;
    hadList.current = hasList;
    const root = rootRef.current;
    if (!root) {
      return;
    }
    const dialogNode = root.closest('.jp-Dialog') ?? root;
    const active = document.activeElement;
    if (
      !listAppeared &&
      active &&
      dialogNode.contains(active) &&
      active !== document.body
    ) {
      return;
    }
    const target =
      (hasList &&
        listRef.current?.querySelector<HTMLElement>(
          `[data-key="${CSS.escape(activeKey)}"]`
        )) ||
      root.querySelector<HTMLElement>('button:not([disabled]), select') ||
      root;
    target.focus();
  }, [hasList, phase]);

  const choose = (option: IOption) => {
    try {
      if (option.accelerator === null) {
        if (state?.attached) {
          model.detach();
        }
      } else if (state?.attached?.name !== option.accelerator.name) {
        model.attach(option.accelerator.name);
      }
    } catch (reason) {
      setLoadError(String((reason as Error).message ?? reason));
    }
  };

  const moveFocus = (index: number) => {
    const next = options[(index + options.length) % options.length];
    setFocusKey(next.key);
    const node = listRef.current?.querySelector<HTMLElement>(
      `[data-key="${CSS.escape(next.key)}"]`
    );
    node?.focus();
  };

  const onKeyDown = (event: React.KeyboardEvent, index: number) => {
    switch (event.key) {
      case 'ArrowDown':
      case 'ArrowRight':
        event.preventDefault();
        moveFocus(index + 1);
        break;
      case 'ArrowUp':
      case 'ArrowLeft':
        event.preventDefault();
        moveFocus(index - 1);
        break;
      case 'Home':
        event.preventDefault();
        moveFocus(0);
        break;
      case 'End':
        event.preventDefault();
        moveFocus(options.length - 1);
        break;
      case 'Enter':
      case ' ':
        event.preventDefault();
        choose(options[index]);
        break;
      default:
        break;
    }
  };

  const load = async () => {
    setLoading(true);
    setLoadError(null);
    try {
      await connector.loadExtension();
    } catch (reason) {
      setLoadError(String((reason as Error).message ?? reason));
    } finally {
      setLoading(false);
    }
  };

  if (phase === 'no-kernel') {
    return (
      <div className="ei-Picker" data-phase={phase} ref={rootRef} tabIndex={-1}>
        <p>
          This notebook has no running kernel. Start one to pick an accelerator.
        </p>
      </div>
    );
  }
  if (phase === 'connecting') {
    return (
      <div className="ei-Picker" data-phase={phase} ref={rootRef} tabIndex={-1}>
        <p role="status">
          Waiting for the kernel to answer (it answers when the running cell
          ends)…
        </p>
      </div>
    );
  }
  if (phase === 'not-loaded' || !state) {
    return (
      <div className="ei-Picker" data-phase={phase} ref={rootRef} tabIndex={-1}>
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
        {(loadError || model.error) && (
          <p className="ei-Picker-error" role="alert">
            {loadError ?? model.error}
          </p>
        )}
      </div>
    );
  }

  const pending = model.pending;
  const pendingTarget = (name: string | null) =>
    pending.some(p =>
      name === null
        ? p.type === 'detach'
        : p.type === 'attach' && p.target === name
    );
  const instanceChoices =
    state.instances.length > 0 ? state.instances : [state.instance];

  return (
    <div className="ei-Picker" data-phase={phase} ref={rootRef} tabIndex={-1}>
      <div className="ei-Picker-header">
        <label className="ei-Picker-instance">
          <span>Notebook instance</span>
          <select
            aria-label="Notebook instance type"
            value={state.instance.name}
            onChange={event => {
              try {
                model.setInstance(event.target.value);
              } catch (reason) {
                setLoadError(String((reason as Error).message ?? reason));
              }
            }}
          >
            {instanceChoices.map(i => (
              <option key={i.name} value={i.name}>
                {i.name} — {formatRate(i.price_per_hour)}
                {i.vcpus !== null ? `, ${i.vcpus} vCPU` : ''}
                {i.memory_gib !== null ? `, ${formatMemory(i.memory_gib)}` : ''}
              </option>
            ))}
          </select>
        </label>
        <div className="ei-Picker-model">
          {state.model
            ? `Model: ${state.model.variable}${
                state.model.kind ? ` (${state.model.kind})` : ''
              } — fit and latency are estimated by the simulator`
            : 'No model in the kernel yet: fit and latency are unknown'}
        </div>
        <div className="ei-Picker-region">
          Prices: SageMaker on-demand, {settings.priceRegion}
        </div>
      </div>
      <div className="ei-Picker-columns" aria-hidden="true">
        <span>Accelerator</span>
        <span>F32 TFLOPS</span>
        <span>F16 TFLOPS</span>
        <span>Memory</span>
        <span>$/h</span>
        <span>Fits</span>
        <span>Latency</span>
      </div>
      <div
        className="ei-Picker-list"
        role="listbox"
        aria-label="Elastic Inference accelerator"
        ref={listRef}
      >
        {options.map((option, index) => {
          const a = option.accelerator;
          const selected = option.key === attachedKey;
          const busy = pendingTarget(a ? a.name : null);
          const classes = ['ei-Picker-option'];
          if (selected) {
            classes.push('ei-mod-selected');
          }
          if (a && a.fits === false) {
            classes.push('ei-mod-nofit');
          }
          if (busy) {
            classes.push('ei-mod-pending');
          }
          return (
            <div
              key={option.key}
              data-key={option.key}
              className={classes.join(' ')}
              role="option"
              aria-selected={selected}
              aria-label={optionLabel(option, state, selected)}
              tabIndex={option.key === activeKey ? 0 : -1}
              onClick={() => {
                setFocusKey(option.key);
                choose(option);
              }}
              onFocus={() => setFocusKey(option.key)}
              onKeyDown={event => onKeyDown(event, index)}
            >
              <span className="ei-Picker-name">
                {a ? a.name : 'None'}
                {busy ? ' (pending)' : ''}
              </span>
              <span>{a ? a.f32_tflops : '–'}</span>
              <span>{a ? a.f16_tflops : '–'}</span>
              <span>{a ? formatMemory(a.memory_gib) : '–'}</span>
              <span>{a ? formatRate(a.price_per_hour) : formatRate(0)}</span>
              <span title={a?.reason ?? undefined}>
                {!a || a.fits === null ? '–' : a.fits ? 'yes' : 'no'}
              </span>
              <span>{a ? formatLatency(a.latency_ms) : '–'}</span>
            </div>
          );
        })}
      </div>
      <div className="ei-Picker-footer">
        <div className="ei-Picker-totals">
          Now: {formatRate(state.cost.rate_per_hour)},{' '}
          {formatMoney(state.cost.total)} so far
          {state.comparison
            ? ` · a whole GPU (${state.comparison.name}) costs ${formatRate(
                state.comparison.price_per_hour
              )}`
            : ''}
        </div>
        <div className="ei-Picker-status" role="status" aria-live="polite">
          {phase === 'pending'
            ? 'Pending: the kernel answers when the running cell ends…'
            : ''}
        </div>
        {(model.error || loadError) && (
          <div className="ei-Picker-error" role="alert">
            Refused: {model.error ?? loadError}
          </div>
        )}
        <button
          className="jp-mod-styled jp-mod-warn ei-Picker-detach"
          disabled={!state.attached}
          aria-label="Detach the accelerator"
          onClick={() => {
            try {
              model.detach();
            } catch (reason) {
              setLoadError(String((reason as Error).message ?? reason));
            }
          }}
        >
          Detach
        </button>
      </div>
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
