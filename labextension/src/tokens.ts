/**
 * The service the front end's plugins share: which kernel connection belongs
 * to which notebook, and the settings the views use.
 */
import type { NotebookPanel } from '@jupyterlab/notebook';
import { Token } from '@lumino/coreutils';
import type { ISignal } from '@lumino/signaling';

import type { KernelConnector } from './connector';
import type { IViewSettings } from './settings';

/** One connector per open notebook, and the active notebook's. */
export interface INotebookConnectors {
  /** A notebook's connector, or null if it has none (yet). */
  get(panel: NotebookPanel | null | undefined): KernelConnector | null;

  /** The active notebook's connector: what the commands act on. */
  readonly current: KernelConnector | null;

  /**
   * The active notebook's connector changed: another notebook became active,
   * the active one got its connector, or it was closed.
   */
  readonly currentChanged: ISignal<INotebookConnectors, KernelConnector | null>;

  /** A notebook was opened and got its connector. */
  readonly added: ISignal<INotebookConnectors, INotebookConnectors.IAdded>;

  /** The views' settings (the defaults until the registry answers). */
  readonly settings: IViewSettings;

  /** The settings were loaded or edited. */
  readonly settingsChanged: ISignal<INotebookConnectors, IViewSettings>;
}

export namespace INotebookConnectors {
  export interface IAdded {
    panel: NotebookPanel;
    connector: KernelConnector;
  }
}

export const INotebookConnectors = new Token<INotebookConnectors>(
  'ei-widgets:INotebookConnectors',
  'The kernel connection of each open notebook and the views’ settings.'
);
