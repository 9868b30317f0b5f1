/**
 * The status-bar item of JupyterLab: one meter that follows the active
 * notebook.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { IStatusBar } from '@jupyterlab/statusbar';

import { openPickerSafely } from './Picker';
import { StatusItem } from './StatusItem';
import { INotebookConnectors } from './tokens';

/**
 * Whether the item goes in the status bar: only in JupyterLab. Jupyter
 * Notebook 7 has no status bar to show it in and no lab shell; there the
 * toolbar plugin puts it in each notebook's toolbar instead.
 */
export function usesStatusBar(
  statusBar: IStatusBar | null,
  labShell: ILabShell | null
): statusBar is IStatusBar {
  return !!statusBar && !!labShell;
}

export const statusBarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ei-widgets:status-bar',
  description:
    'Status-bar meter of the active notebook’s Elastic Inference accelerator',
  autoStart: true,
  requires: [INotebookConnectors],
  // Optional rather than required, so that Notebook 7 starts it quietly.
  optional: [IStatusBar, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    connectors: INotebookConnectors,
    statusBar: IStatusBar | null,
    labShell: ILabShell | null
  ) => {
    if (!usesStatusBar(statusBar, labShell)) {
      return;
    }
    const item = new StatusItem({
      onOpen: connector => openPickerSafely(connector, connectors.settings),
      settings: connectors.settings,
      connector: connectors.current
    });
    statusBar.registerStatusItem('ei-widgets:status', {
      item,
      align: 'left',
      rank: 4,
      isActive: () => true
    });
    connectors.currentChanged.connect((_, connector) => {
      item.connector = connector;
    });
    connectors.settingsChanged.connect((_, settings) => {
      item.settings = settings;
    });
  }
};
