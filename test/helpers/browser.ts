import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium; playwright-core drives it without downloading a browser of its own. */
export const chromiumPath = process.env.TSOCKIFY_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    timeout: 20_000,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
    ],
  });
}

/**
 * A fresh context (own cookies, storage, certificate decisions) with a fixed viewport.
 * `ignoreHTTPSErrors` lets the TLS test use a certificate generated on the spot.
 */
export async function newContext(browser: Browser, viewport = { width: 1024, height: 768 }): Promise<BrowserContext> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport });
  context.setDefaultTimeout(10_000);
  return context;
}

export interface Rgba { r: number; g: number; b: number; a: number }

/**
 * Pixels of the desktop as noVNC drew them, read from its canvas at framebuffer coordinates
 * (the canvas holds the desktop at full size; scaling is CSS only).
 */
export async function canvasPixels(page: Page, points: Array<[number, number]>, selector = 'canvas'): Promise<Rgba[]> {
  return page.evaluate(({ points, selector }) => {
    // noVNC's cursor is a separate canvas on <body>; the desktop is the largest one.
    const canvases = Array.from(document.querySelectorAll<HTMLCanvasElement>(selector));
    const canvas = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
    if (!canvas) throw new Error(`no ${selector} on the page`);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('the canvas has no 2d context');
    return points.map(([x, y]) => {
      const d = ctx.getImageData(x, y, 1, 1).data;
      return { r: d[0]!, g: d[1]!, b: d[2]!, a: d[3]! };
    });
  }, { points, selector });
}

/** Size of noVNC's desktop canvas (the framebuffer size), or null before it exists. */
export async function canvasSize(page: Page, selector = 'canvas'): Promise<{ width: number; height: number } | null> {
  return page.evaluate((selector) => {
    const canvases = Array.from(document.querySelectorAll<HTMLCanvasElement>(selector));
    const canvas = canvases.sort((a, b) => b.width * b.height - a.width * a.height)[0];
    return canvas ? { width: canvas.width, height: canvas.height } : null;
  }, selector);
}

export function sameColor(p: Rgba, c: { r: number; g: number; b: number }, tolerance = 8): boolean {
  return Math.abs(p.r - c.r) <= tolerance && Math.abs(p.g - c.g) <= tolerance && Math.abs(p.b - c.b) <= tolerance;
}

/**
 * Wait until every sampled point shows colour `c`: noVNC draws the first framebuffer update a
 * little after it says "connected". Rejects with the last samples after timeoutMs.
 */
export async function waitForCanvasColor(
  page: Page, points: Array<[number, number]>, c: { r: number; g: number; b: number },
  timeoutMs = 10_000, selector = 'canvas',
): Promise<Rgba[]> {
  const until = Date.now() + timeoutMs;
  let last: Rgba[] = [];
  for (;;) {
    last = await canvasPixels(page, points, selector).catch(() => []);
    if (last.length === points.length && last.every((p) => sameColor(p, c))) return last;
    if (Date.now() > until) {
      throw new Error(`canvas did not show rgb(${c.r}, ${c.g}, ${c.b}) at ${JSON.stringify(points)} within ${timeoutMs} ms; ` +
        `last samples: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Collect what the page says went wrong (console errors, uncaught exceptions, failed
 * requests), to put into assertion messages.
 */
export function pageDiagnostics(page: Page): () => string {
  const lines: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') lines.push(`console.${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => lines.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => lines.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => { if (r.status() >= 400) lines.push(`HTTP ${r.status()}: ${r.url()}`); });
  return () => lines.join('\n');
}
