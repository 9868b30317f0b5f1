/**
 * The accelerator picker end to end: JupyterLab with the built extension,
 * a real kernel, Debian's chromium.
 */
import { IJupyterLabPageFixture, expect, test } from '@jupyterlab/galata';
import * as path from 'path';

const SCREENSHOT = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  'docs',
  'images',
  'picker.png'
);

const item = '#jp-main-statusbar .ei-StatusItem';
const dialog = '.ei-PickerDialog';

/** Run `code` in a new last cell; returns its text output. */
async function runInKernel(
  page: IJupyterLabPageFixture,
  code: string
): Promise<string> {
  await page.notebook.addCell('code', code);
  const index = (await page.notebook.getCellCount()) - 1;
  await page.notebook.runCell(index);
  return ((await page.notebook.getCellTextOutput(index)) ?? []).join('');
}

test.describe.configure({ mode: 'serial' });

// Galata's kernel tracking answers POST /api/kernels/<id>/restart with 201,
// which JupyterLab rejects (it expects 200), so a restart never completes.
// The sessions fixture still shuts the test's kernels down.
test.use({ autoGoto: true, kernels: null });

test('the status item activates and shows a kernel without ei_widgets', async ({
  page
}) => {
  await page.notebook.createNew('plain.ipynb');
  const status = page.locator(item);
  await expect(status).toBeVisible();
  await expect(status).toHaveAttribute('data-phase', 'not-loaded', {
    timeout: 60000
  });
  await expect(status).toHaveText(/not loaded/);
  await expect(status).toHaveAttribute('role', 'button');
  await expect(status).toHaveAttribute('aria-label', /%load_ext ei_widgets/);

  // The palette commands are there.
  const commands = await page.evaluate(() => {
    const app = (window as any).jupyterapp;
    return [
      'ei-widgets:attach',
      'ei-widgets:detach',
      'ei-widgets:dashboard',
      'ei-widgets:open-picker',
      'ei-widgets:load'
    ].filter(id => app.commands.hasCommand(id));
  });
  expect(commands).toHaveLength(5);

  // Opening it offers to load the extension, on an explicit click only.
  await status.click();
  await expect(page.locator(`${dialog} .ei-Picker-load`)).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(page.locator(dialog)).toHaveCount(0);
  await expect(status).toHaveAttribute('data-phase', 'not-loaded');
});

test('attach from the picker, detach, restart', async ({ page }) => {
  await page.notebook.createNew('picker.ipynb');
  const status = page.locator(item);
  await expect(status).toHaveAttribute('data-phase', 'not-loaded', {
    timeout: 60000
  });

  await page.notebook.setCell(0, 'code', '%load_ext ei_widgets');
  await page.notebook.runCell(0);
  await expect(status).toHaveAttribute('data-phase', 'ready', {
    timeout: 60000
  });
  await expect(status).toHaveText(/No accelerator/);

  // A model in the kernel: the picker shows whether each accelerator fits it.
  await runInKernel(
    page,
    'import ei_widgets\nfrom ei_widgets import accelerator\n' +
      'accelerator.state().set_model("resnet50", ' +
      'ei_widgets.profile(ei_widgets.demo_model("resnet50")))'
  );

  // Open the picker and pick ml.eia2.large.
  await status.click();
  const picker = page.locator(dialog);
  await expect(picker).toBeVisible();
  await expect(picker.locator('.jp-Dialog-header')).toContainText(
    'picker.ipynb'
  );
  const options = picker.locator('[role="listbox"] [role="option"]');
  await expect(options).toHaveCount(7);
  const large = picker.locator('[role="option"][data-key="ml.eia2.large"]');
  await expect(large).toHaveAttribute(
    'aria-label',
    /ml\.eia2\.large.*2 F32 TFLOPS/
  );
  await expect(large).toHaveAttribute(
    'aria-label',
    /fits the model, estimated latency \d/
  );
  await expect(picker.locator('.ei-Picker-model')).toContainText('resnet50');
  await large.click();
  await expect(large).toHaveAttribute('aria-selected', 'true', {
    timeout: 60000
  });
  await expect(status).toHaveText(/ml\.eia2\.large/);
  await expect(status).toHaveAttribute('data-phase', 'ready');
  await expect(picker.locator('.ei-Picker-totals')).toContainText('whole GPU');
  await picker.locator('.jp-Dialog-content').screenshot({ path: SCREENSHOT });

  // Close with the keyboard; the kernel agrees.
  await page.keyboard.press('Escape');
  await expect(picker).toHaveCount(0);
  expect(
    await runInKernel(
      page,
      'import ei_widgets\nprint("attached:", ei_widgets.current().name)'
    )
  ).toContain('attached: ml.eia2.large');

  // Open with the keyboard, move with the arrows, detach.
  await status.focus();
  await page.keyboard.press('Enter');
  await expect(picker).toBeVisible();
  await expect(large).toBeFocused();
  await page.keyboard.press('ArrowDown');
  await expect(
    picker.locator('[role="option"][data-key="ml.eia2.xlarge"]')
  ).toBeFocused();
  await page.keyboard.press('Home');
  await expect(
    picker.locator('[role="option"][data-key="__none__"]')
  ).toBeFocused();
  await picker.getByRole('button', { name: 'Detach the accelerator' }).click();
  await expect(status).toHaveText(/No accelerator/, { timeout: 60000 });
  await expect(
    picker.locator('[role="option"][data-key="__none__"]')
  ).toHaveAttribute('aria-selected', 'true');
  await picker.getByRole('button', { name: 'Close the picker' }).click();
  await expect(picker).toHaveCount(0);

  expect(
    await runInKernel(page, 'print("attached:", ei_widgets.current())')
  ).toContain('attached: None');

  // A request is "pending" until the kernel answers. Record every rendering of
  // the item, so that a short wait is seen too (ipykernel 7 may answer comm
  // messages while a cell runs).
  await status.evaluate(node => {
    const seen: string[] = [];
    (window as any).__eiSeen = seen;
    new MutationObserver(() =>
      seen.push(`${node.getAttribute('data-phase')}|${node.textContent}`)
    ).observe(node, {
      attributes: true,
      childList: true,
      subtree: true,
      characterData: true
    });
  });
  await page.evaluate(() => {
    const app = (window as any).jupyterapp;
    const kernel = app.shell.currentWidget.sessionContext.session.kernel;
    kernel.requestExecute({ code: 'import time; time.sleep(3)' });
  });
  await page.evaluate(() =>
    (window as any).jupyterapp.commands.execute('ei-widgets:attach', {
      accelerator: 'ml.eia2.xlarge'
    })
  );
  await expect(status).toHaveText(/ml\.eia2\.xlarge/, { timeout: 60000 });
  await expect(status).toHaveAttribute('data-phase', 'ready');
  const seen: string[] = await page.evaluate(() => (window as any).__eiSeen);
  const firstPending = seen.findIndex(s => /^pending\|.*pending/.test(s));
  const firstAttached = seen.findIndex(s =>
    /^ready\|.*ml\.eia2\.xlarge/.test(s)
  );
  expect(firstPending).toBeGreaterThanOrEqual(0);
  expect(firstPending).toBeLessThan(firstAttached);

  // A change made in the kernel (here by a magic) reaches the item.
  await runInKernel(page, '%ei_detach');
  await expect(status).toHaveText(/No accelerator/);
  await runInKernel(page, '%ei_attach ml.eia2.xlarge');
  await expect(status).toHaveText(/ml\.eia2\.xlarge/);

  // A refusal shows the kernel's message.
  await page.evaluate(() =>
    (window as any).jupyterapp.commands.execute('ei-widgets:attach', {
      accelerator: 'ml.eia9.huge'
    })
  );
  await expect(status).toHaveAttribute('data-phase', 'error', {
    timeout: 60000
  });
  await expect(status).toHaveText(/refused/);
  await expect(status).toHaveAttribute(
    'aria-label',
    /Unknown accelerator 'ml\.eia9\.huge'/
  );
  await expect(status).toHaveText(/ml\.eia2\.xlarge/);

  // A restarted kernel has no ei_widgets: the item goes back to "not loaded".
  await page.evaluate(async () => {
    const app = (window as any).jupyterapp;
    await app.shell.currentWidget.sessionContext.restartKernel();
  });
  await expect(status).toHaveAttribute('data-phase', 'not-loaded', {
    timeout: 60000
  });
  await expect(status).toHaveText(/not loaded/);
});
