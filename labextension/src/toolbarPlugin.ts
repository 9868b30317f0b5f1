/**
 * The same meter where there is no status bar (Jupyter Notebook 7): one item
 * in each notebook's toolbar, for that notebook's kernel.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { KernelConnector } from './connector';
import { openPickerSafely } from './Picker';
import { IViewSettings } from './settings';
import { usesStatusBar } from './statusBarPlugin';
import { StatusItem } from './StatusItem';
import { INotebookConnectors } from './tokens';

export const toolbarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ei-widgets:toolbar',
  description:
    'Notebook-toolbar meter of the Elastic Inference accelerator where there is no status bar',
  autoStart: true,
  requires: [INotebookConnectors, INotebookTracker],
  optional: [IStatusBar, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    connectors: INotebookConnectors,
    tracker: INotebookTracker,
    statusBar: IStatusBar | null,
    labShell: ILabShell | null
  ) => {
    if (usesStatusBar(statusBar, labShell)) {
      return;
    }
    const addItem = (panel: NotebookPanel, connector: KernelConnector) => {
      const item = new StatusItem({
        onOpen: c => openPickerSafely(c, connectors.settings),
        settings: connectors.settings,
        connector
      });
      panel.toolbar.insertAfter('spacer', 'ei-widgets', item);
      const follow = (_: INotebookConnectors, settings: IViewSettings) => {
        item.settings = settings;
      };
      connectors.settingsChanged.connect(follow);
      // The item goes with its notebook's toolbar; stop updating it then.
      item.disposed.connect(() =>
        connectors.settingsChanged.disconnect(follow)
      );
    };
    // Notebooks opened while this plugin waited for the core one.
    tracker.forEach(panel => {
      const connector = connectors.get(panel);
      if (connector) {
        addItem(panel, connector);
      }
    });
    connectors.added.connect((_, { panel, connector }) =>
      addItem(panel, connector)
    );
  }
};
