import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';

import { KernelConnector } from './connector';
import { errorText } from './format';
import { Precision } from './model';
import { openPicker, openPickerSafely, showProblem } from './Picker';
import { DEFAULT_VIEW_SETTINGS, IViewSettings } from './settings';
import { StatusItem } from './StatusItem';

const PLUGIN_ID = 'ei-widgets:plugin';

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

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Status-bar item and picker for simulated Elastic Inference accelerators',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar, ICommandPalette, ISettingRegistry, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    labShell: ILabShell | null
  ) => {
    const connectors = new Map<NotebookPanel, KernelConnector>();
    let settings: IViewSettings = { ...DEFAULT_VIEW_SETTINGS };
    let defaultInstance = '';
    const items: StatusItem[] = [];
    // The kernels whose instance type was already set from the settings.
    const instanceApplied = new Set<string>();

    const open = (connector: KernelConnector) =>
      openPickerSafely(connector, settings);

    const applyDefaultInstance = (connector: KernelConnector) => {
      const model = connector.model;
      const kernelId = connector.kernel?.id;
      const state = model.state;
      if (
        !defaultInstance ||
        !kernelId ||
        !state ||
        model.phase !== 'ready' ||
        instanceApplied.has(kernelId)
      ) {
        return;
      }
      instanceApplied.add(kernelId);
      const known = state.instances.some(i => i.name === defaultInstance);
      if (known && state.instance.name !== defaultInstance) {
        model.setInstance(defaultInstance);
      }
    };

    // A status-bar item in JupyterLab; a toolbar item where there is no
    // status bar (Jupyter Notebook 7).
    const useToolbar = !statusBar || !labShell;
    let statusItem: StatusItem | null = null;
    if (statusBar && labShell) {
      statusItem = new StatusItem({ onOpen: open, settings });
      items.push(statusItem);
      statusBar.registerStatusItem('ei-widgets:status', {
        item: statusItem,
        align: 'left',
        rank: 4,
        isActive: () => true
      });
    }

    const connectorOf = (panel: NotebookPanel | null | undefined) =>
      panel ? (connectors.get(panel) ?? null) : null;

    tracker.widgetAdded.connect((_, panel) => {
      const connector = new KernelConnector(
        panel.sessionContext,
        () => panel.title.label
      );
      connectors.set(panel, connector);
      connector.model.changed(() => applyDefaultInstance(connector));
      if (useToolbar) {
        const item = new StatusItem({ onOpen: open, settings, connector });
        items.push(item);
        panel.toolbar.insertAfter('spacer', 'ei-widgets', item);
        item.disposed.connect(() => items.splice(items.indexOf(item), 1));
      }
      panel.disposed.connect(() => {
        connectors.delete(panel);
        connector.dispose();
        if (statusItem && statusItem.connector === connector) {
          statusItem.connector = connectorOf(tracker.currentWidget);
        }
      });
      if (statusItem && tracker.currentWidget === panel) {
        statusItem.connector = connector;
      }
    });

    tracker.currentChanged.connect((_, panel) => {
      if (statusItem) {
        statusItem.connector = connectorOf(panel);
      }
    });

    const current = (): KernelConnector | null =>
      connectorOf(tracker.currentWidget);
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
          await openPicker(connector, settings);
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
        if (!accelerator || !isReady()) {
          await openPicker(connector, settings);
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
      label: 'Detach the Elastic Inference Accelerator',
      caption: 'Detach the accelerator from this notebook’s kernel',
      isEnabled: () => isReady() && !!current()?.model.state?.attached,
      execute: () => {
        const connector = current();
        if (connector && isReady()) {
          return connector.model.detach();
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

    if (settingRegistry) {
      const apply = (loaded: ISettingRegistry.ISettings) => {
        const composite = loaded.composite as Record<string, unknown>;
        const interval = Number(composite.refreshInterval);
        settings = {
          priceRegion:
            typeof composite.priceRegion === 'string' && composite.priceRegion
              ? composite.priceRegion
              : DEFAULT_VIEW_SETTINGS.priceRegion,
          refreshInterval:
            Number.isFinite(interval) && interval > 0
              ? interval
              : DEFAULT_VIEW_SETTINGS.refreshInterval
        };
        defaultInstance =
          typeof composite.defaultInstance === 'string'
            ? composite.defaultInstance
            : '';
        for (const item of items) {
          item.settings = settings;
        }
      };
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
  }
};

export default plugin;
