/**
 * The front end's plugins. The core plugin provides INotebookConnectors;
 * the others show it (status bar in JupyterLab, notebook toolbar in
 * Notebook 7) and act on it (commands).
 */
import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { commandsPlugin } from './commandsPlugin';
import { corePlugin } from './corePlugin';
import { statusBarPlugin } from './statusBarPlugin';
import { toolbarPlugin } from './toolbarPlugin';

export { CommandIDs } from './commandsPlugin';
export { INotebookConnectors } from './tokens';

const plugins: JupyterFrontEndPlugin<any>[] = [
  corePlugin,
  statusBarPlugin,
  toolbarPlugin,
  commandsPlugin
];

export default plugins;
