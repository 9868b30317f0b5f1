/**
 * The shared service behind INotebookConnectors. It follows the notebook
 * tracker; the connectors themselves come from a factory so that this logic
 * runs without JupyterLab (see __tests__/notebookConnectors.spec.ts).
 */
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import type { KernelConnector } from './connector';
import { DefaultInstance } from './defaultInstance';
import {
  DEFAULT_VIEW_SETTINGS,
  IExtensionSettings,
  IViewSettings
} from './settings';
import type { INotebookConnectors } from './tokens';

export class NotebookConnectors implements INotebookConnectors {
  constructor(options: NotebookConnectors.IOptions) {
    this._tracker = options.tracker;
    this._create = options.create;
    this._tracker.widgetAdded.connect(this._onWidgetAdded, this);
    this._tracker.currentChanged.connect(this._onCurrentChanged, this);
  }

  get(panel: NotebookPanel | null | undefined): KernelConnector | null {
    return panel ? (this._connectors.get(panel) ?? null) : null;
  }

  get current(): KernelConnector | null {
    return this.get(this._tracker.currentWidget);
  }

  get currentChanged(): ISignal<this, KernelConnector | null> {
    return this._currentChanged;
  }

  get added(): ISignal<this, INotebookConnectors.IAdded> {
    return this._added;
  }

  get settings(): IViewSettings {
    return this._settings;
  }

  get settingsChanged(): ISignal<this, IViewSettings> {
    return this._settingsChanged;
  }

  /** Take the settings the registry loaded or an edit changed. */
  configure(settings: IExtensionSettings): void {
    this._settings = settings.view;
    this._defaultInstance.name = settings.defaultInstance;
    this._settingsChanged.emit(this._settings);
  }

  private _onWidgetAdded(_: INotebookTracker, panel: NotebookPanel): void {
    const connector = this._create(panel);
    this._connectors.set(panel, connector);
    // Every state change may be the first "ready" of a new kernel.
    connector.model.changed(() =>
      this._defaultInstance.apply(connector.model, connector.kernel?.id)
    );
    this._added.emit({ panel, connector });
    panel.disposed.connect(() => {
      this._connectors.delete(panel);
      connector.dispose();
      if (this._shown === connector) {
        this._show(this.current);
      }
    });
    // The tracker may make a notebook current before announcing it.
    if (this._tracker.currentWidget === panel) {
      this._show(connector);
    }
  }

  private _onCurrentChanged(
    _: INotebookTracker,
    panel: NotebookPanel | null
  ): void {
    this._show(this.get(panel));
  }

  private _show(connector: KernelConnector | null): void {
    if (connector !== this._shown) {
      this._shown = connector;
      this._currentChanged.emit(connector);
    }
  }

  private _tracker: NotebookConnectors.ITracker;
  private _create: (panel: NotebookPanel) => KernelConnector;
  private _connectors = new Map<NotebookPanel, KernelConnector>();
  private _defaultInstance = new DefaultInstance();
  /** The connector last announced by currentChanged. */
  private _shown: KernelConnector | null = null;
  private _settings: IViewSettings = { ...DEFAULT_VIEW_SETTINGS };
  private _currentChanged = new Signal<this, KernelConnector | null>(this);
  private _added = new Signal<this, INotebookConnectors.IAdded>(this);
  private _settingsChanged = new Signal<this, IViewSettings>(this);
}

export namespace NotebookConnectors {
  /** The part of the notebook tracker the service follows. */
  export type ITracker = Pick<
    INotebookTracker,
    'widgetAdded' | 'currentChanged' | 'currentWidget'
  >;

  export interface IOptions {
    tracker: ITracker;
    /** Make the connector of a newly opened notebook. */
    create: (panel: NotebookPanel) => KernelConnector;
  }
}
