/**
 * Helpers shared by the specs: the console watch (every spec asserts that the
 * browser logged no error), the notebooks they start from, and the WCAG
 * contrast of an element's text.
 */
import type { IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';

/** Adds a code cell at the end, runs it and returns its output area. */
export async function run(
  page: IJupyterLabPageFixture,
  code: string
): Promise<Locator> {
  await page.notebook.addCell('code', code);
  const index = (await page.notebook.getCellCount()) - 1;
  await page.notebook.runCell(index);
  return page.locator('.jp-Cell').nth(index).locator('.jp-OutputArea');
}

/**
 * A new notebook `name` whose first cell loads ei_widgets, makes ResNet-50,
 * runs `attach` (a magic line, or nothing) and shows the dashboard.
 */
export async function dashboardNotebook(
  page: IJupyterLabPageFixture,
  name: string,
  attach = ''
): Promise<void> {
  await page.notebook.createNew(name);
  await page.notebook.setCell(
    0,
    'code',
    '%load_ext ei_widgets\n' +
      'import ei_widgets\n' +
      'resnet = ei_widgets.demo_model("resnet50")\n' +
      (attach ? `${attach}\n` : '') +
      '%ei'
  );
  await page.notebook.runCell(0);
}

/**
 * Records every console error and uncaught page error of `page` from now on;
 * the returned list grows as they come.
 */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', message => {
    if (message.type() === 'error') {
      errors.push(message.text());
    }
  });
  page.on('pageerror', error => errors.push(`uncaught: ${error.message}`));
  return errors;
}

/**
 * The WCAG 2 contrast ratio of each element's text against what is drawn
 * behind it, from the computed colours (semi-transparent colours composed
 * over the backgrounds of the element and its ancestors, down to the page).
 */
export async function textContrasts(
  page: Page,
  selector: string
): Promise<
  { text: string; color: string; background: string; ratio: number }[]
> {
  return page.evaluate(sel => {
    type RGBA = [number, number, number, number];
    const parse = (value: string): RGBA => {
      const numbers = (value.match(/[\d.]+(e-?\d+)?%?/g) ?? []).map(n =>
        n.endsWith('%') ? parseFloat(n) / 100 : parseFloat(n)
      );
      if (value.startsWith('color(srgb')) {
        const [r, g, b, a = 1] = numbers;
        return [r * 255, g * 255, b * 255, a];
      }
      const [r, g, b, a = 1] = numbers;
      return [r, g, b, a];
    };
    const over = (top: RGBA, bottom: RGBA): RGBA => {
      const a = top[3] + bottom[3] * (1 - top[3]);
      if (a === 0) {
        return [0, 0, 0, 0];
      }
      const mix = (i: number) =>
        (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a;
      return [mix(0), mix(1), mix(2), a];
    };
    const background = (element: Element): RGBA => {
      let colour: RGBA = [0, 0, 0, 0];
      for (
        let node: Element | null = element;
        node;
        node = node.parentElement
      ) {
        colour = over(colour, parse(getComputedStyle(node).backgroundColor));
        if (colour[3] >= 0.999) {
          return colour;
        }
      }
      return over(colour, [255, 255, 255, 1]);
    };
    const luminance = ([r, g, b]: RGBA) => {
      const channel = (c: number) => {
        const s = c / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
    };
    return Array.from(document.querySelectorAll(sel)).map(element => {
      const back = background(element);
      // SVG text (chart labels) is painted with its fill, HTML text with its colour
      const style = getComputedStyle(element);
      const ink = element instanceof SVGElement ? style.fill : style.color;
      const fore = over(parse(ink), back);
      const [high, low] = [luminance(fore), luminance(back)].sort(
        (a, b) => b - a
      );
      return {
        text: (element.textContent ?? '').trim().slice(0, 60),
        color: ink,
        background: back.map(c => Math.round(c)).join(','),
        ratio: (high + 0.05) / (low + 0.05)
      };
    });
  }, selector);
}
