import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'ei-widgets:plugin',
  description: 'Elastic Inference accelerator picker',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    console.log('ei-widgets activated');
  }
};

export default plugin;
