/**
 * The notebook dashboard (`%ei`) renders in JupyterLab with ipywidgets and
 * bqplot, follows an attach made by a magic, and runs a virtual-clock load
 * whose gauges fill. Saves the README's screenshot of it.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

const SCREENSHOT = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  'docs',
  'images',
  'dashboard.png'
);

test.use({
  autoGoto: true,
  kernels: null,
  viewport: { width: 1400, height: 1400 }
});

test('the dashboard shows the model, follows the kernel and runs', async ({
  page
}) => {
  await page.notebook.createNew('dashboard.ipynb');
  await page.notebook.setCell(
    0,
    'code',
    '%load_ext ei_widgets\n' +
      'import ei_widgets\n' +
      'resnet = ei_widgets.demo_model("resnet50")\n' +
      '%ei_attach ml.eia2.large --precision fp16\n' +
      '%ei'
  );
  await page.notebook.runCell(0);

  const board = page.locator('.ei-dashboard');
  await expect(board).toBeVisible({ timeout: 60000 });
  // The models tab lists the model and draws FLOPs by op type (a bqplot figure).
  await expect(board).toContainText('resnet', { timeout: 60000 });
  await expect(board.locator('.bqplot').first()).toBeVisible({
    timeout: 60000
  });
  // The header follows the attachment the magic made.
  await expect(board).toContainText('ml.eia2.large');

  // Run a virtual-clock load from the Run tab and wait for it to finish.
  await board.locator('.lm-TabBar-tab', { hasText: 'Run' }).click();
  const clock = board.locator('.widget-toggle-button', { hasText: 'virtual' });
  if ((await clock.count()) > 0) {
    await clock.first().click();
  }
  const requests = board.locator('.widget-text', { hasText: 'Requests' });
  await requests.locator('input').fill('60');
  await requests.locator('input').press('Tab');
  await board
    .locator('button', { hasText: /^\s*Run\s*$/ })
    .first()
    .click();
  await expect(board).toContainText(/finished/i, { timeout: 120000 });
  await expect(board).toContainText('60/60');
  await board.scrollIntoViewIfNeeded();
  await board.screenshot({ path: SCREENSHOT });
});
