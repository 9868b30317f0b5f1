/**
 * The dashboard, the rich results and the picker in JupyterLab Dark: the
 * picked and selected rows and the chart's labels keep a WCAG AA contrast
 * (4.5:1) between their text and their background, measured from the computed
 * colours. No console error.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { dashboardNotebook, run, textContrasts, watchConsole } from './helpers';

test.describe.configure({ mode: 'serial' });
test.use({
  autoGoto: true,
  kernels: null,
  viewport: { width: 1400, height: 1200 }
});

/** Every text of the matched rows, with its contrast; all of them at least 4.5:1. */
async function expectReadable(page: IJupyterLabPageFixture, rows: string) {
  const measured = await textContrasts(page, `${rows}, ${rows} *`);
  expect(measured.length).toBeGreaterThan(0);
  const poor = measured.filter(m => m.text && m.ratio < 4.5);
  expect(poor).toEqual([]);
}

test('picked and selected rows are readable in JupyterLab Dark', async ({
  page
}) => {
  const errors = watchConsole(page);
  await page.theme.setDarkTheme();
  expect(await page.theme.getTheme()).toBe('JupyterLab Dark');

  await dashboardNotebook(page, 'dark.ipynb');
  const board = page.locator('.ei-dashboard');
  await expect(board).toContainText('resnet', { timeout: 60000 });

  // The dashboard: the chosen model (Models) and the pick (Sizing).
  await expect(board.locator('tr.ei-picked').first()).toBeAttached({
    timeout: 60000
  });
  await board.locator('.lm-TabBar-tab', { hasText: 'Sizing' }).click();
  await expect(board).toContainText('the same call as %ei_recommend', {
    timeout: 60000
  });
  await expect(board.locator('tr.ei-picked')).toHaveCount(2, {
    timeout: 60000
  });
  await expectReadable(page, '.ei-dashboard tr.ei-picked');

  // The Sizing chart's title, axis labels and tick labels (bqplot's own
  // colour for titles and labels is orange in a dark theme).
  await expect(board.locator('.bqplot text.axislabel')).toHaveCount(2, {
    timeout: 60000
  });
  const labels = await textContrasts(
    page,
    '.ei-dashboard .bqplot text.mainheading, .ei-dashboard .bqplot text.axislabel, .ei-dashboard .bqplot .tick text'
  );
  expect(labels.length).toBeGreaterThan(4);
  expect(labels.filter(m => m.text && m.ratio < 4.5)).toEqual([]);
  // and the title and axis labels are in the theme's text colour
  const themeText = await page.evaluate(() => {
    const probe = document.createElement('span');
    probe.style.color = 'var(--jp-content-font-color1)';
    document.body.appendChild(probe);
    const colour = getComputedStyle(probe).color;
    probe.remove();
    return colour;
  });
  const named = await textContrasts(
    page,
    '.ei-dashboard .bqplot text.mainheading, .ei-dashboard .bqplot text.axislabel'
  );
  expect(named.map(m => m.color)).toEqual(named.map(() => themeText));
  await board.screenshot({
    path: test.info().outputPath('dashboard-dark.png')
  });

  // The rich HTML of recommend() and %ei_inspect.
  const rec = await run(
    page,
    'ei_widgets.recommend(resnet, latency_target_ms=20, requests_per_second=10)'
  );
  await expect(rec.locator('tr.ei-picked').first()).toBeAttached({
    timeout: 120000
  });
  await expectReadable(page, '.jp-OutputArea-output tr.ei-picked');

  // The status bar's picker: the selected row.
  const status = page.locator('#jp-main-statusbar .ei-StatusItem');
  await expect(status).toHaveAttribute('data-phase', 'ready', {
    timeout: 60000
  });
  await status.click();
  const picker = page.locator('.ei-PickerDialog');
  const large = picker.locator('[role="option"][data-key="ml.eia2.large"]');
  await large.click();
  await expect(large).toHaveAttribute('aria-selected', 'true');
  await expectReadable(page, '.ei-Picker-option.ei-mod-selected');
  await picker
    .locator('.jp-Dialog-content')
    .screenshot({ path: test.info().outputPath('picker-dark.png') });
  await page.keyboard.press('Escape');

  expect(errors).toEqual([]);
});
