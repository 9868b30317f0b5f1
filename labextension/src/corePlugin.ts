/**
 * The core plugin: gives each notebook its kernel connector and loads the
 * settings. It keeps the original plugin id because schema/plugin.json (the
 * settings) is registered under it.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { KernelConnector } from './connector';
import { NotebookConnectors } from './notebookConnectors';
import { readSettings } from './settings';
import { INotebookConnectors } from './tokens';

const PLUGIN_ID = 'ei-widgets:plugin';

export const corePlugin: JupyterFrontEndPlugin<INotebookConnectors> = {
  id: PLUGIN_ID,
  description:
    'Connects each notebook to its kernel’s ei_widgets comm and holds the settings',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ISettingRegistry],
  provides: INotebookConnectors,
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    settingRegistry: ISettingRegistry | null
  ): INotebookConnectors => {
    const connectors = new NotebookConnectors({
      tracker,
      create: panel =>
        new KernelConnector(panel.sessionContext, () => panel.title.label)
    });
    if (settingRegistry) {
      const apply = (loaded: ISettingRegistry.ISettings) =>
        connectors.configure(
          readSettings(loaded.composite as Record<string, unknown>)
        );
      settingRegistry
        .load(PLUGIN_ID)
        .then(loaded => {
          apply(loaded);
          loaded.changed.connect(apply);
        })
        .catch(reason =>
          console.error('ei-widgets: could not load the settings', reason)
        );
    }
    return connectors;
  }
};
