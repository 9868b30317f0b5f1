/**
 * The dashboard in narrow places: JupyterLab 900 px wide with the file
 * browser open, then the same notebook split in two views (File > New View
 * for Notebook). Every tab reflows: nothing sticks out of the dashboard, no
 * chart or table scrolls sideways, and the browser logs no error (bqplot's
 * "<rect> negative value" among them).
 */
import { expect, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';
import { dashboardNotebook, watchConsole } from './helpers';

test.describe.configure({ mode: 'serial' });
test.use({
  autoGoto: true,
  kernels: null,
  viewport: { width: 900, height: 1000 }
});

const TABS = ['Models', 'Accelerator', 'Run', 'Cost', 'Sizing'];

/** What in `board` sticks out of it or scrolls sideways (empty: it reflows). */
async function overflows(board: Locator): Promise<string[]> {
  return board.evaluate(root => {
    const edge = root.getBoundingClientRect().right + 1;
    const found: string[] = [];
    const name = (e: Element) =>
      `${e.tagName.toLowerCase()}.${Array.from(e.classList).join('.')}`;
    if (root.scrollWidth > root.clientWidth + 1) {
      found.push(
        `the dashboard scrolls: ${root.scrollWidth} > ${root.clientWidth}`
      );
    }
    for (const e of Array.from(root.querySelectorAll('*'))) {
      const box = e.getBoundingClientRect();
      if (box.width === 0 || (e as HTMLElement).offsetParent === null) {
        continue; // hidden
      }
      if (box.right > edge) {
        found.push(
          `${name(e)} ends at ${Math.round(box.right)} > ${Math.round(edge)}`
        );
      }
      const style = getComputedStyle(e);
      if (
        ['auto', 'scroll'].includes(style.overflowX) &&
        e.scrollWidth > e.clientWidth + 1
      ) {
        found.push(`${name(e)} scrolls: ${e.scrollWidth} > ${e.clientWidth}`);
      }
    }
    return found.slice(0, 20);
  });
}

async function everyTabFits(board: Locator, where: string) {
  for (const title of TABS) {
    await board.locator('.lm-TabBar-tab', { hasText: title }).click();
    await board.page().waitForTimeout(700); // charts lay out after a debounce
    expect.soft(await overflows(board), `${title} tab, ${where}`).toEqual([]);
  }
}

test('the dashboard reflows at 900 px with the file browser open and in a split view', async ({
  page
}) => {
  const errors = watchConsole(page);
  await page.sidebar.openTab('filebrowser');
  await dashboardNotebook(page, 'narrow.ipynb', '%ei_attach ml.eia2.large');
  const board = page.locator('.ei-dashboard').first();
  await expect(board).toContainText('resnet', { timeout: 60000 });
  const width = (await board.boundingBox())?.width ?? 0;
  expect(width).toBeLessThanOrEqual(600); // the narrow case it is meant to be

  // A short run, so that the charts have something to draw.
  await board.locator('.lm-TabBar-tab', { hasText: 'Run' }).click();
  await board
    .locator('.widget-toggle-button', { hasText: 'virtual' })
    .first()
    .click();
  const requests = board.locator('.widget-text', { hasText: 'Requests' });
  await requests.locator('input').fill('6');
  await requests.locator('input').press('Tab');
  await board
    .locator('button.jupyter-button', { hasText: /^\s*Run\s*$/ })
    .first()
    .click();
  await expect(board).toContainText('6/6 requests, finished', {
    timeout: 120000
  });
  await everyTabFits(board, `${Math.round(width)} px`);
  await board.screenshot({ path: test.info().outputPath('dashboard-900.png') });
  expect(errors).toEqual([]);

  // The same notebook in two views side by side in a wider window, the file
  // browser closed: each view about 600 px wide.
  await page.sidebar.close('left');
  await page.setViewportSize({ width: 1400, height: 1000 });
  await page.menu.clickMenuItem('File>New View for Notebook');
  const boards = page.locator('.ei-dashboard');
  await expect(boards).toHaveCount(2, { timeout: 60000 });
  await page.waitForTimeout(1000);
  for (let i = 0; i < 2; i++) {
    const view = boards.nth(i);
    await view.scrollIntoViewIfNeeded();
    const split = (await view.boundingBox())?.width ?? 0;
    expect(split).toBeLessThanOrEqual(640);
    await everyTabFits(view, `split view ${i + 1}`);
  }
  await boards
    .nth(1)
    .screenshot({ path: test.info().outputPath('dashboard-split.png') });

  // No error in either view: a new view draws only the open tab's charts,
  // which have a width there (bqplot 0.13.1 draws a chart with no width, as
  // in a hidden tab, with a negative plot area: "<rect> negative value").
  expect(errors).toEqual([]);
});
