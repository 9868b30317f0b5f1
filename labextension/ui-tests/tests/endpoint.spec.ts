/**
 * The dashboard's Endpoint tab in JupyterLab, with a real kernel, a real
 * endpoint server process and Debian's chromium:
 *
 * - without an endpoint it says how to deploy one;
 * - during a load test it draws the endpoint live: its name and status, the
 *   requests per second, p90 against the target, the queue, the instances and
 *   the cost so far, which ticks;
 * - deleting the endpoint (%ei_endpoints --delete) brings the empty state back;
 * - the browser logs no error.
 */
import { expect, test } from '@jupyterlab/galata';
import { run, watchConsole } from './helpers';

test.use({ autoGoto: true, viewport: { width: 1400, height: 1200 } });

const SETUP = [
  '%load_ext ei_widgets',
  'import numpy as np',
  'from onnx import TensorProto, helper, numpy_helper',
  'w = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")',
  'model = helper.make_model(',
  '    helper.make_graph(',
  '        [helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",',
  '        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],',
  '        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])], [w]),',
  '    opset_imports=[helper.make_opsetid("", 17)])',
  '%ei'
].join('\n');

// The load test runs in a thread, so the kernel stays free and the tab is
// watched while it goes on.
const LOAD = [
  'import threading',
  'load = threading.Thread(target=p.load_test,',
  '                        kwargs=dict(rps=40, duration=20, progress=False))',
  'load.start()'
].join('\n');

test('the Endpoint tab follows an endpoint during a load test', async ({
  page
}) => {
  const errors = watchConsole(page);
  await page.notebook.createNew('endpoint.ipynb');
  await page.notebook.setCell(0, 'code', SETUP);
  await page.notebook.runCell(0);

  const board = page.locator('.ei-dashboard');
  await expect(board).toBeVisible({ timeout: 60000 });
  await board.locator('.lm-TabBar-tab', { hasText: 'Endpoint' }).click();
  const view = board.locator('.ei-endpoint-tab');
  await expect(view).toContainText(
    'No endpoint: deploy with ei_widgets.deploy(...) or %ei_deploy.'
  );

  const deployed = await run(
    page,
    'p = %ei_deploy model --instance ml.m5.large --accelerator ml.eia2.medium --count 2 --name ui-test'
  );
  await expect(deployed).toContainText(
    'Deployed ui-test: 2 x ml.m5.large + ml.eia2.medium',
    { timeout: 90000 }
  );
  await run(page, LOAD);

  const summary = view.locator('.ei-endpoint-summary');
  await expect(summary).toContainText('ui-test', { timeout: 30000 });
  await expect(summary).toContainText('InService');
  await expect(summary).toContainText('2 instances');
  await expect(summary).toContainText(/[1-9]\d* req\/s last second/, {
    timeout: 30000
  });
  await expect(summary).toContainText(
    /p90 [\d.]+ ms \((within|over) the 50 ms target\)/
  );
  await expect(summary).toContainText(/queue \d+ of \d+/);
  await expect(summary).toContainText('saturates at');
  await expect(summary).toContainText('modelled');

  // The cost so far ticks while the endpoint exists.
  const cost = summary.locator('.ei-endpoint-cost');
  const before = await cost.innerText();
  expect(before).toMatch(/^\$\d/);
  await expect(cost).not.toHaveText(before, { timeout: 15000 });

  // The three charts are on the page with their lines drawn.
  await expect(view.locator('.bqplot')).toHaveCount(3);
  await expect(
    view.locator('.bqplot g.curve path.line').first()
  ).toHaveAttribute('d', /\d/);
  await view.screenshot({ path: test.info().outputPath('endpoint.png') });

  await run(page, 'load.join()');
  const deleted = await run(page, '%ei_endpoints --delete ui-test');
  await expect(deleted).toContainText('Deleted ui-test');
  await expect(view).toContainText(
    'No endpoint: deploy with ei_widgets.deploy(...) or %ei_deploy.',
    { timeout: 15000 }
  );
  await expect(board.locator('mjx-container')).toHaveCount(0);
  expect(errors).toEqual([]);
});
