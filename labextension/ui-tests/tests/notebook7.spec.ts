/**
 * In Jupyter Notebook 7 (no status bar) the same control sits in the
 * notebook's toolbar, loads the extension on a click and follows the kernel.
 */
import { expect, test } from '@jupyterlab/galata';
import { watchConsole } from './helpers';

test.use({ autoGoto: false, kernels: null });

const NOTEBOOK = {
  cells: [],
  metadata: {
    kernelspec: {
      name: 'python3',
      display_name: 'Python 3',
      language: 'python'
    }
  },
  nbformat: 4,
  nbformat_minor: 5
};

test('the control sits in the Notebook 7 toolbar', async ({
  page,
  tmpPath,
  baseURL
}) => {
  const path = `${tmpPath}/notebook7.ipynb`;
  expect(
    await page.contents.uploadContent(JSON.stringify(NOTEBOOK), 'text', path)
  ).toBe(true);
  // A plain page: Galata's own page.goto waits for JupyterLab, which Notebook 7 is not.
  const notebook7 = await page.context().newPage();
  const errors = watchConsole(notebook7);
  await notebook7.goto(`${baseURL}/notebooks/${path}`);

  const item = notebook7.locator('.jp-NotebookPanel-toolbar .ei-StatusItem');
  await expect(item).toBeVisible({ timeout: 60000 });
  await expect(item).toHaveAttribute('data-phase', 'not-loaded', {
    timeout: 60000
  });
  await expect(item).toHaveAttribute('role', 'button');

  // Loading the extension from the picker, on an explicit click, connects it.
  await item.click();
  await notebook7.locator('.ei-PickerDialog .ei-Picker-load').click();
  await expect(item).toHaveAttribute('data-phase', 'ready', { timeout: 60000 });
  await expect(item).toHaveText(/No accelerator/);
  // Left out: two errors of the Notebook 7 page that do not come from this
  // extension (it runs no file browser command and reads no 'schema'); they
  // look like JupyterLab's settings read by Notebook 7's shell.
  const notebook7Own = [
    /Command 'filebrowser:open-path' not registered/,
    /Cannot read properties of undefined \(reading 'schema'\)/
  ];
  expect(
    errors.filter(error => !notebook7Own.some(own => own.test(error)))
  ).toEqual([]);
  await notebook7.close();
});
