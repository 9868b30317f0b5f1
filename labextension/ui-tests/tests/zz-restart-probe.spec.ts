import { expect, test } from '@jupyterlab/galata';
test('probe restart', async ({ page }) => {
  page.on('console', m => console.log('CONSOLE', m.type(), m.text().slice(0, 200)));
  await page.notebook.createNew('probe.ipynb');
  await page.notebook.setCell(0, 'code', 'print(1)');
  await page.notebook.runCell(0);
  await page.evaluate(async () => {
    const app = (window as any).jupyterapp;
    await app.shell.currentWidget.sessionContext.restartKernel();
  });
  for (let i = 0; i < 5; i++) {
    console.log('STATUS', await page.evaluate(() => { const k = (window as any).jupyterapp.shell.currentWidget.sessionContext.session.kernel; return k.status + ' ' + k.connectionStatus; }));
    await page.waitForTimeout(1000);
  }
  await page.notebook.setCell(0, 'code', 'print(2)');
  await page.notebook.runCell(0);
  console.log('OUT', await page.notebook.getCellTextOutput(0));
  expect(1).toBe(1);
});
