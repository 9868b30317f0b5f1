/**
 * The status-bar (or toolbar) item: a live meter of one notebook's
 * accelerator, precision, memory and running cost, like
 * jupyter-resource-usage's memory meter. A click opens the picker.
 */
import { ReactWidget } from '@jupyterlab/apputils';
import React from 'react';

import { KernelConnector } from './connector';
import { formatPrice, formatRunningMoney } from './format';
import { useClock, useModel } from './hooks';
import { MemoryBar } from './MemoryBar';
import { IKernelState, KernelModel } from './model';
import { estimateAt } from './selection';
import { IViewSettings } from './settings';

/** Memory bar, rate and the ticking cost of a connected kernel. */
function Meter(props: {
  model: KernelModel;
  state: IKernelState;
  settings: IViewSettings;
}): JSX.Element {
  const { model, state, settings } = props;
  useClock(state.cost.metered, settings.refreshInterval);
  const attached = state.attached;
  const accelerator = attached
    ? state.accelerators.find(a => a.name === attached.name)
    : undefined;
  const precision = attached?.precision === 'fp16' ? 'fp16' : 'fp32';
  const total = model.costNow();
  return (
    <>
      {accelerator && (
        <MemoryBar
          used={estimateAt(accelerator, precision).memory_bytes}
          capacity={accelerator.memory_gib * 2 ** 30}
        />
      )}
      <span className="ei-StatusItem-rate">
        {formatPrice(state.cost.rate_per_hour)}
      </span>
      <span className="ei-StatusItem-cost" data-total={total}>
        {formatRunningMoney(total, state.cost.rate_per_hour)}
      </span>
    </>
  );
}

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
        title: 'Elastic Inference: open a notebook to pick an accelerator',
        note: null
      };
  const state = model?.state ?? null;
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
      {model && state && (
        <Meter model={model} state={state} settings={settings} />
      )}
      {summary.note && (
        <span className="ei-StatusItem-note">{summary.note}</span>
      )}
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
