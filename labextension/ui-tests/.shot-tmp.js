const { chromium } = require('@playwright/test');
(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox']
  });
  const page = await browser.newPage({
    viewport: { width: 1400, height: 1100 }
  });
  await page.goto('http://127.0.0.1:8899/lab/tree/demo.ipynb');
  await page.waitForFunction(
    () => window.jupyterapp && document.querySelector('.jp-Notebook'),
    null,
    { timeout: 60000 }
  );
  await page.waitForTimeout(4000);
  await page.evaluate(() =>
    window.jupyterapp.commands.execute('notebook:run-all-cells')
  );
  await page.waitForTimeout(12000);
  await page.evaluate(() =>
    window.jupyterapp.commands.execute('application:toggle-left-area')
  );
  const tabs = ['Models', 'Accelerator', 'Run', 'Cost', 'Sizing'];
  for (const t of tabs) {
    const el = page
      .locator('.lm-TabBar-tabLabel', { hasText: new RegExp('^' + t + '$') })
      .first();
    await el.click();
    await page.waitForTimeout(1500);
    const board = page.locator('.jp-OutputArea-output .widget-vbox').first();
    await board.screenshot({ path: `/tmp/lab/${t}.png` });
  }
  await browser.close();
})().catch(e => {
  console.error(e);
  process.exit(1);
});
