/**
 * The notebook dashboard (`%ei`), the magics and the rich results in
 * JupyterLab with a real kernel and Debian's chromium:
 *
 * - the Accelerator tab mirrors what is attached (a new dashboard, then an
 *   attach from a magic), Attach is disabled when it would change nothing,
 *   and detaching asks first;
 * - HOST-BOUND shows in a paced run only, worded for this machine;
 * - no "negative width" console errors from charts in hidden tabs;
 * - a user error is one red line that stops Run All;
 * - %ei_inspect, %ei_recommend and a recommendation display rich HTML;
 * - after a kernel restart the old dashboard says it is disconnected.
 *
 * Screenshots go to the test's own output folder (run.sh copies them over the
 * README's images only when asked to).
 */
import { expect, test } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';
import { dashboardNotebook, run, watchConsole } from './helpers';

test.describe.configure({ mode: 'serial' });

// The browser logs no error in any test (asserted after each one).
let consoleErrors: string[] = [];
test.beforeEach(({ page }) => {
  consoleErrors = watchConsole(page);
});
test.afterEach(() => {
  expect(consoleErrors).toEqual([]);
});

// Galata's kernel tracking answers a restart with 201, which JupyterLab
// rejects; without it a restart completes (as in picker.spec.ts).
test.use({
  autoGoto: true,
  kernels: null,
  viewport: { width: 1400, height: 1400 }
});

function tab(board: Locator, title: string): Locator {
  return board.locator('.lm-TabBar-tab', { hasText: title });
}

function button(scope: Locator, text: string | RegExp): Locator {
  const escaped =
    typeof text === 'string' ? text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : '';
  const name =
    typeof text === 'string' ? new RegExp(`^\\s*${escaped}\\s*$`) : text;
  return scope.locator('button.jupyter-button', { hasText: name }).first();
}

test('the dashboard mirrors the attachment, asks before detaching, and marks host-bound paced runs only', async ({
  page
}) => {
  const negativeWidths: string[] = [];
  let step = 'start';
  page.on('console', message => {
    if (/negative value/.test(message.text())) {
      negativeWidths.push(`${message.text()} (during: ${step})`);
    }
  });
  await dashboardNotebook(
    page,
    'dashboard.ipynb',
    '%ei_attach ml.eia2.large --precision fp16'
  );

  const board = page.locator('.ei-dashboard');
  await expect(board).toBeVisible({ timeout: 60000 });
  await expect(board).toContainText('resnet', { timeout: 60000 });
  await expect(board).toContainText('FLOPs by op type');

  // 15.1: a new dashboard selects what is attached, at its precision.
  step = 'the Accelerator tab';
  await tab(board, 'Accelerator').click();
  const picker = board.locator('.widget-gridbox').first();
  await expect(button(picker, 'ml.eia2.large')).toHaveClass(/mod-info/);
  await expect(button(picker, 'None (CPU only)')).not.toHaveClass(/mod-info/);
  await expect(
    board.locator('.widget-toggle-button.mod-active', { hasText: 'FP16' })
  ).toBeVisible();
  const attach = button(board, /^\s*Attach\s*$/);
  await expect(attach).toBeDisabled();

  // Detach asks first; Cancel keeps the accelerator.
  await button(board, 'Detach').click();
  await expect(board).toContainText('Detach ml.eia2.large?');
  await button(board, 'Cancel').click();
  await expect(board).toContainText('Attached: ml.eia2.large (fp16)');

  // An attach from a magic moves the selection with it.
  await run(page, '%ei_attach ml.eia2.xlarge');
  await expect(button(picker, 'ml.eia2.xlarge')).toHaveClass(/mod-info/, {
    timeout: 30000
  });
  await expect(button(picker, 'ml.eia2.large')).not.toHaveClass(/mod-info/);
  await expect(
    board.locator('.widget-toggle-button.mod-active', { hasText: 'FP32' })
  ).toBeVisible();
  await expect(attach).toBeDisabled();

  step = 'runs';
  // 15.2: a virtual run of a model this machine runs slower than the
  // simulated device: no HOST-BOUND mark (the host's speed does not matter).
  await tab(board, 'Run').click();
  await board
    .locator('.widget-toggle-button', { hasText: 'virtual' })
    .first()
    .click();
  const requests = board.locator('.widget-text', { hasText: 'Requests' });
  await requests.locator('input').fill('6');
  await requests.locator('input').press('Tab');
  const runButton = button(board, 'Run');
  await runButton.click();
  await expect(board).toContainText('6/6 requests, finished', {
    timeout: 120000
  });
  await expect(board.getByText('HOST-BOUND')).toBeHidden();

  // The same run paced: this machine cannot keep up, and it says so.
  await board
    .locator('.widget-toggle-button', { hasText: 'paced' })
    .first()
    .click();
  await runButton.click();
  // the virtual run's "finished" first goes, so that the wait is for this run's
  await expect(board).not.toContainText('6/6 requests, finished', {
    timeout: 30000
  });
  await expect(board).toContainText('6/6 requests, finished', {
    timeout: 120000
  });
  const mark = board.getByText('HOST-BOUND');
  await expect(mark).toBeVisible({ timeout: 30000 });
  await expect(board).toContainText(
    'This machine cannot keep up with the simulated device; the simulated figures are unaffected.'
  );
  await expect(board).not.toContainText('larger accelerator');
  await expect(board).toContainText('simulated seconds since the run started');

  for (const title of ['Sizing', 'Cost', 'Models', 'Accelerator', 'Run']) {
    step = `the ${title} tab`;
    await tab(board, title).click();
    await page.waitForTimeout(500); // charts lay out after a debounce
  }
  await expect(board).toContainText('the same call as %ei_recommend');
  await board.screenshot({ path: test.info().outputPath('dashboard.png') });

  // Amounts in dollars are text, never typeset as a formula.
  await expect(board.locator('mjx-container')).toHaveCount(0);

  // 15.8: no chart drew a negative-width rectangle in a hidden tab.
  expect(negativeWidths).toEqual([]);

  // 15.12: after a restart the old dashboard says it is disconnected.
  await page.evaluate(async () => {
    const app = (window as any).jupyterapp;
    await app.shell.currentWidget.sessionContext.restartKernel();
  });
  await expect(board.locator('.ei-disconnected')).toBeVisible({
    timeout: 60000
  });
  await expect(board.locator('.ei-disconnected')).toContainText(
    'Disconnected:'
  );
});

test('user errors are one red line that stops Run All; results display rich HTML', async ({
  page
}) => {
  await page.notebook.createNew('errors.ipynb');
  await page.notebook.setCell(
    0,
    'code',
    '%load_ext ei_widgets\nimport ei_widgets\nresnet = ei_widgets.demo_model("resnet50")'
  );
  await page.notebook.runCell(0);

  // 15.5: an unknown size is a UsageError with the valid sizes, on stderr.
  const unknownIndex = await page.notebook.getCellCount();
  const unknown = await run(page, '%ei_attach ml.eia3.huge');
  const stderr = unknown.locator(
    '[data-mime-type="application/vnd.jupyter.stderr"]'
  );
  await expect(stderr).toContainText('UsageError');
  await expect(stderr).toContainText("Unknown accelerator 'ml.eia3.huge'");
  await expect(stderr).toContainText('ml.eia2.medium');
  const sizes = await run(page, '%ei_attach');
  await expect(sizes).toContainText('ml.eia2.medium (2 GiB, $0.168/h)');

  // A bad path: one line, not a chained traceback.
  await run(page, '%ei_attach ml.eia2.medium');
  const passwd = await run(page, "ei_widgets.session('/etc/passwd')");
  const error = passwd.locator(
    '[data-mime-type="application/vnd.jupyter.stderr"]'
  );
  await expect(error).toContainText('ModelLoadError');
  const text = (await error.innerText()).trim();
  expect(text.split('\n')).toHaveLength(1);
  expect(text).not.toContain('Traceback');

  // Run All stops at the first error (the unknown size): later cells do not run.
  // ipykernel 7 aborts the requests it has received when the error happens; a
  // first cell that takes a moment lets the server forward all of Run All's
  // requests before then (else a busy server's last one can arrive after).
  await page.notebook.setCell(
    0,
    'code',
    'import time; time.sleep(2)\n%load_ext ei_widgets\nimport ei_widgets\n' +
      'resnet = ei_widgets.demo_model("resnet50")'
  );
  await page.notebook.addCell('code', 'print("ran after the error")');
  const last = (await page.notebook.getCellCount()) - 1;
  const unknownPrompt = page
    .locator('.jp-Cell')
    .nth(unknownIndex)
    .locator('.jp-InputPrompt');
  const before = await unknownPrompt.innerText();
  await page.menu.clickMenuItem('Run>Run All Cells');
  await expect(unknownPrompt).not.toHaveText(before, { timeout: 120000 });
  await expect(unknownPrompt).not.toHaveText(/\*/, { timeout: 120000 });
  await expect(stderr).toContainText('UsageError');
  await page.waitForTimeout(3000); // time for a next cell to run, were it to
  expect(
    (await page.notebook.getCellTextOutput(last)) ?? []
  ).not.toContainEqual(expect.stringContaining('ran after the error'));

  // 15.9: rich results, the answer first and sensible figures.
  const inspected = await run(page, '%ei_inspect resnet');
  await expect(inspected.locator('table').first()).toBeVisible({
    timeout: 60000
  });
  await expect(inspected).toContainText('FLOPs per call at batch 1');
  expect(await inspected.locator('details').count()).toBeGreaterThanOrEqual(1);
  const recommended = await run(
    page,
    '%ei_recommend resnet --latency-ms 20 --rps 10'
  );
  await expect(recommended).toContainText('Searched', { timeout: 120000 });
  await expect(recommended.locator('details summary').first()).toContainText(
    'options, best first'
  );
  const rec = await run(
    page,
    'ei_widgets.recommend(resnet, latency_target_ms=20, requests_per_second=10)'
  );
  await expect(rec).toContainText('Latencies are modelled', {
    timeout: 120000
  });
  expect((await rec.innerText()).length).toBeLessThan(20000);
  await expect(rec).not.toContainText('Recommendation(rows=');
  await expect(rec.locator('mjx-container')).toHaveCount(0);
  await expect(rec).toContainText(/\$\d+\.\d+\/h/); // a price read as text
  await rec.screenshot({ path: test.info().outputPath('recommendation.png') });
});
