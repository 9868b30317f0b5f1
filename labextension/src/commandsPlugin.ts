/**
 * The commands (picker, attach, detach, load, dashboard) and their palette
 * entries. They act on the active notebook.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

import { detachAfterAsking } from './detach';
import { errorText } from './format';
import { Precision } from './model';
import { openPicker, showProblem } from './Picker';
import { INotebookConnectors } from './tokens';

export namespace CommandIDs {
  export const openPicker = 'ei-widgets:open-picker';
  export const attach = 'ei-widgets:attach';
  export const detach = 'ei-widgets:detach';
  export const dashboard = 'ei-widgets:dashboard';
  export const load = 'ei-widgets:load';
}

const CATEGORY = 'Elastic Inference';

/** Code of the cell the "show the dashboard" command inserts and runs. */
const DASHBOARD_CODE = '%ei';

/** Ask in a dialog, with the picker's buttons: true to detach. */
async function askToDetach(question: string): Promise<boolean> {
  const result = await showDialog({
    title: 'Detach the accelerator?',
    body: question,
    buttons: [
      Dialog.cancelButton({ label: 'Keep it attached' }),
      Dialog.warnButton({ label: 'Detach' })
    ]
  });
  return result.button.accept;
}

export const commandsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'ei-widgets:commands',
  description:
    'Commands to open the picker, attach, detach, load ei_widgets and show the dashboard',
  autoStart: true,
  requires: [INotebookConnectors, INotebookTracker],
  optional: [ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    connectors: INotebookConnectors,
    tracker: INotebookTracker,
    palette: ICommandPalette | null
  ) => {
    const current = () => connectors.current;
    // Phases in which the kernel answers requests.
    const isReady = () => {
      const phase = current()?.model.phase;
      return phase === 'ready' || phase === 'error' || phase === 'pending';
    };

    app.commands.addCommand(CommandIDs.openPicker, {
      label: 'Open the Accelerator Picker',
      caption: 'Show the Elastic Inference accelerators for this notebook',
      isEnabled: () => current() !== null,
      execute: async () => {
        const connector = current();
        if (connector) {
          await openPicker(connector, connectors.settings);
        }
      }
    });

    app.commands.addCommand(CommandIDs.attach, {
      label: args =>
        args.accelerator
          ? `Attach ${String(args.accelerator)}`
          : 'Attach an Elastic Inference Accelerator…',
      caption: 'Attach a simulated accelerator to this notebook’s kernel',
      isEnabled: () => current() !== null,
      execute: async args => {
        const connector = current();
        if (!connector) {
          return;
        }
        const accelerator =
          typeof args.accelerator === 'string' ? args.accelerator : '';
        // Without an accelerator, or before the kernel answers, let the
        // user choose in the picker.
        if (!accelerator || !isReady()) {
          await openPicker(connector, connectors.settings);
          return;
        }
        const precision =
          args.precision === 'fp16' || args.precision === 'fp32'
            ? (args.precision as Precision)
            : undefined;
        return connector.model.attach(accelerator, precision);
      }
    });

    app.commands.addCommand(CommandIDs.detach, {
      label: 'Detach the Elastic Inference Accelerator…',
      caption:
        'Detach the accelerator from this notebook’s kernel (asks first)',
      isEnabled: () => isReady() && !!current()?.model.state?.attached,
      execute: () => {
        const connector = current();
        if (connector && isReady()) {
          // The same question as the picker's Detach button.
          return detachAfterAsking(connector.model, askToDetach);
        }
      }
    });

    app.commands.addCommand(CommandIDs.load, {
      label: 'Load ei_widgets in the Kernel',
      caption: 'Run %load_ext ei_widgets in this notebook’s kernel',
      isEnabled: () => current()?.model.phase === 'not-loaded',
      execute: async () => {
        const connector = current();
        if (!connector) {
          return;
        }
        try {
          await connector.loadExtension();
        } catch (reason) {
          showProblem('Could not load ei_widgets', errorText(reason));
        }
      }
    });

    app.commands.addCommand(CommandIDs.dashboard, {
      label: 'Show the Elastic Inference Dashboard',
      caption: `Insert a cell running ${DASHBOARD_CODE} below the active cell and run it`,
      // The dashboard is a cell's output: it needs a notebook, not the comm.
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const panel = tracker.currentWidget;
        if (!panel) {
          return;
        }
        const notebook = panel.content;
        NotebookActions.insertBelow(notebook);
        const cell = notebook.activeCell;
        if (!cell) {
          return;
        }
        cell.model.sharedModel.setSource(DASHBOARD_CODE);
        await NotebookActions.run(notebook, panel.sessionContext);
      }
    });

    if (palette) {
      for (const command of [
        CommandIDs.attach,
        CommandIDs.detach,
        CommandIDs.dashboard,
        CommandIDs.openPicker,
        CommandIDs.load
      ]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }
  }
};
