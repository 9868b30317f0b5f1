// aad5b3e302232531d90f139502a73cea073a27c5
"use strict";

Object.defineProperty(exports, "__esModule", {
  value: true
});
exports.default = void 0;
var _test = require("@playwright/test");
var _process$env$EI_UI_PO, _process$env$EI_CHROM;
/**
 * Playwright configuration for the ei-widgets browser tests.
 *
 * Galata's defaults, driving Debian's chromium (no browser download), without
 * video (it would need an ffmpeg download), on the port run.sh picked.
 */
// eslint-disable-next-line @typescript-eslint/no-var-requires
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');
const port = Number((_process$env$EI_UI_PO = process.env.EI_UI_PORT) !== null && _process$env$EI_UI_PO !== void 0 ? _process$env$EI_UI_PO : '8888');
const executablePath = (_process$env$EI_CHROM = process.env.EI_CHROMIUM) !== null && _process$env$EI_CHROM !== void 0 ? _process$env$EI_CHROM : '/usr/bin/chromium';
var _default = exports.default = (0, _test.defineConfig)({
  ...baseConfig,
  testDir: './tests',
  outputDir: './test-results',
  timeout: 180 * 1000,
  expect: {
    timeout: 30 * 1000
  },
  workers: 1,
  retries: 0,
  reporter: [['list'], ['html', {
    open: 'never'
  }]],
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${port}`,
    video: 'off',
    trace: 'off',
    launchOptions: {
      executablePath,
      args: ['--no-sandbox', '--disable-dev-shm-usage']
    }
  },
  webServer: {
    command: 'jlpm start',
    url: `http://127.0.0.1:${port}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe'
  }
});
//# sourceMappingURL=data:application/json;charset=utf-8;base64,eyJ2ZXJzaW9uIjozLCJuYW1lcyI6WyJfdGVzdCIsInJlcXVpcmUiLCJfcHJvY2VzcyRlbnYkRUlfVUlfUE8iLCJfcHJvY2VzcyRlbnYkRUlfQ0hST00iLCJiYXNlQ29uZmlnIiwicG9ydCIsIk51bWJlciIsInByb2Nlc3MiLCJlbnYiLCJFSV9VSV9QT1JUIiwiZXhlY3V0YWJsZVBhdGgiLCJFSV9DSFJPTUlVTSIsIl9kZWZhdWx0IiwiZXhwb3J0cyIsImRlZmF1bHQiLCJkZWZpbmVDb25maWciLCJ0ZXN0RGlyIiwib3V0cHV0RGlyIiwidGltZW91dCIsImV4cGVjdCIsIndvcmtlcnMiLCJyZXRyaWVzIiwicmVwb3J0ZXIiLCJvcGVuIiwidXNlIiwiYmFzZVVSTCIsInZpZGVvIiwidHJhY2UiLCJsYXVuY2hPcHRpb25zIiwiYXJncyIsIndlYlNlcnZlciIsImNvbW1hbmQiLCJ1cmwiLCJyZXVzZUV4aXN0aW5nU2VydmVyIiwic3Rkb3V0Iiwic3RkZXJyIl0sInNvdXJjZXMiOlsicGxheXdyaWdodC5jb25maWcudHMiXSwic291cmNlc0NvbnRlbnQiOlsiLyoqXG4gKiBQbGF5d3JpZ2h0IGNvbmZpZ3VyYXRpb24gZm9yIHRoZSBlaS13aWRnZXRzIGJyb3dzZXIgdGVzdHMuXG4gKlxuICogR2FsYXRhJ3MgZGVmYXVsdHMsIGRyaXZpbmcgRGViaWFuJ3MgY2hyb21pdW0gKG5vIGJyb3dzZXIgZG93bmxvYWQpLCB3aXRob3V0XG4gKiB2aWRlbyAoaXQgd291bGQgbmVlZCBhbiBmZm1wZWcgZG93bmxvYWQpLCBvbiB0aGUgcG9ydCBydW4uc2ggcGlja2VkLlxuICovXG5pbXBvcnQgeyBkZWZpbmVDb25maWcgfSBmcm9tICdAcGxheXdyaWdodC90ZXN0JztcblxuLy8gZXNsaW50LWRpc2FibGUtbmV4dC1saW5lIEB0eXBlc2NyaXB0LWVzbGludC9uby12YXItcmVxdWlyZXNcbmNvbnN0IGJhc2VDb25maWcgPSByZXF1aXJlKCdAanVweXRlcmxhYi9nYWxhdGEvbGliL3BsYXl3cmlnaHQtY29uZmlnJyk7XG5cbmNvbnN0IHBvcnQgPSBOdW1iZXIocHJvY2Vzcy5lbnYuRUlfVUlfUE9SVCA/PyAnODg4OCcpO1xuY29uc3QgZXhlY3V0YWJsZVBhdGggPSBwcm9jZXNzLmVudi5FSV9DSFJPTUlVTSA/PyAnL3Vzci9iaW4vY2hyb21pdW0nO1xuXG5leHBvcnQgZGVmYXVsdCBkZWZpbmVDb25maWcoe1xuICAuLi5iYXNlQ29uZmlnLFxuICB0ZXN0RGlyOiAnLi90ZXN0cycsXG4gIG91dHB1dERpcjogJy4vdGVzdC1yZXN1bHRzJyxcbiAgdGltZW91dDogMTgwICogMTAwMCxcbiAgZXhwZWN0OiB7IHRpbWVvdXQ6IDMwICogMTAwMCB9LFxuICB3b3JrZXJzOiAxLFxuICByZXRyaWVzOiAwLFxuICByZXBvcnRlcjogW1snbGlzdCddLCBbJ2h0bWwnLCB7IG9wZW46ICduZXZlcicgfV1dLFxuICB1c2U6IHtcbiAgICAuLi5iYXNlQ29uZmlnLnVzZSxcbiAgICBiYXNlVVJMOiBgaHR0cDovLzEyNy4wLjAuMToke3BvcnR9YCxcbiAgICB2aWRlbzogJ29mZicsXG4gICAgdHJhY2U6ICdvZmYnLFxuICAgIGxhdW5jaE9wdGlvbnM6IHtcbiAgICAgIGV4ZWN1dGFibGVQYXRoLFxuICAgICAgYXJnczogWyctLW5vLXNhbmRib3gnLCAnLS1kaXNhYmxlLWRldi1zaG0tdXNhZ2UnXVxuICAgIH1cbiAgfSxcbiAgd2ViU2VydmVyOiB7XG4gICAgY29tbWFuZDogJ2pscG0gc3RhcnQnLFxuICAgIHVybDogYGh0dHA6Ly8xMjcuMC4wLjE6JHtwb3J0fS9sYWJgLFxuICAgIHRpbWVvdXQ6IDEyMCAqIDEwMDAsXG4gICAgcmV1c2VFeGlzdGluZ1NlcnZlcjogZmFsc2UsXG4gICAgc3Rkb3V0OiAncGlwZScsXG4gICAgc3RkZXJyOiAncGlwZSdcbiAgfVxufSk7XG4iXSwibWFwcGluZ3MiOiI7Ozs7OztBQU1BLElBQUFBLEtBQUEsR0FBQUMsT0FBQTtBQUFnRCxJQUFBQyxxQkFBQSxFQUFBQyxxQkFBQTtBQU5oRDtBQUNBO0FBQ0E7QUFDQTtBQUNBO0FBQ0E7QUFHQTtBQUNBLE1BQU1DLFVBQVUsR0FBR0gsT0FBTyxDQUFDLDBDQUEwQyxDQUFDO0FBRXRFLE1BQU1JLElBQUksR0FBR0MsTUFBTSxFQUFBSixxQkFBQSxHQUFDSyxPQUFPLENBQUNDLEdBQUcsQ0FBQ0MsVUFBVSxjQUFBUCxxQkFBQSxjQUFBQSxxQkFBQSxHQUFJLE1BQU0sQ0FBQztBQUNyRCxNQUFNUSxjQUFjLElBQUFQLHFCQUFBLEdBQUdJLE9BQU8sQ0FBQ0MsR0FBRyxDQUFDRyxXQUFXLGNBQUFSLHFCQUFBLGNBQUFBLHFCQUFBLEdBQUksbUJBQW1CO0FBQUMsSUFBQVMsUUFBQSxHQUFBQyxPQUFBLENBQUFDLE9BQUEsR0FFdkQsSUFBQWQsS0FBQSxDQUFBZSxZQUFBLEVBQWE7RUFDMUIsR0FBR1gsVUFBVTtFQUNiWSxPQUFPLEVBQUUsU0FBUztFQUNsQkMsU0FBUyxFQUFFLGdCQUFnQjtFQUMzQkMsT0FBTyxFQUFFLEdBQUcsR0FBRyxJQUFJO0VBQ25CQyxNQUFNLEVBQUU7SUFBRUQsT0FBTyxFQUFFLEVBQUUsR0FBRztFQUFLLENBQUM7RUFDOUJFLE9BQU8sRUFBRSxDQUFDO0VBQ1ZDLE9BQU8sRUFBRSxDQUFDO0VBQ1ZDLFFBQVEsRUFBRSxDQUFDLENBQUMsTUFBTSxDQUFDLEVBQUUsQ0FBQyxNQUFNLEVBQUU7SUFBRUMsSUFBSSxFQUFFO0VBQVEsQ0FBQyxDQUFDLENBQUM7RUFDakRDLEdBQUcsRUFBRTtJQUNILEdBQUdwQixVQUFVLENBQUNvQixHQUFHO0lBQ2pCQyxPQUFPLEVBQUUsb0JBQW9CcEIsSUFBSSxFQUFFO0lBQ25DcUIsS0FBSyxFQUFFLEtBQUs7SUFDWkMsS0FBSyxFQUFFLEtBQUs7SUFDWkMsYUFBYSxFQUFFO01BQ2JsQixjQUFjO01BQ2RtQixJQUFJLEVBQUUsQ0FBQyxjQUFjLEVBQUUseUJBQXlCO0lBQ2xEO0VBQ0YsQ0FBQztFQUNEQyxTQUFTLEVBQUU7SUFDVEMsT0FBTyxFQUFFLFlBQVk7SUFDckJDLEdBQUcsRUFBRSxvQkFBb0IzQixJQUFJLE1BQU07SUFDbkNhLE9BQU8sRUFBRSxHQUFHLEdBQUcsSUFBSTtJQUNuQmUsbUJBQW1CLEVBQUUsS0FBSztJQUMxQkMsTUFBTSxFQUFFLE1BQU07SUFDZEMsTUFBTSxFQUFFO0VBQ1Y7QUFDRixDQUFDLENBQUMiLCJpZ25vcmVMaXN0IjpbXX0=