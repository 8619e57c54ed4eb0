// Opens the demo in headless Chromium (Debian's, driven by playwright-core), types an order
// into the ticket, and checks the preview on the page against the Node package's preview of
// the same book and order; saves demo/screenshot.png.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';
import { offlineBook, offlineMarket } from '../demo/offline-book.js';
import { serve } from './serve.mjs';

const require = createRequire(import.meta.url);
const { BookMirror } = require('../pkg/node/engine_wasm.js');

const server = await serve(0);
const url = `http://127.0.0.1:${server.address().port}/demo/`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 720 } });
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });

  // A BUY NO at 0.52 (YES 0.48) that takes the 0.49 and 0.48 bids and rests: typed the way a user would.
  await page.selectOption('#outcome', 'NO');
  await page.fill('#price', '');
  await page.type('#price', '0.52');
  await page.fill('#qty', '');
  await page.type('#qty', '70');
  const order = { side: 'BUY', outcome: 'NO', type: 'LIMIT', qty: 70, price: '0.52', timeInForce: 'GTC' };
  const expected = BookMirror.fromSnapshot(offlineMarket, offlineBook()).preview(order, { available: '1000.00' });
  assert.equal(expected.fills.length, 2, 'the order takes two levels');
  await page.waitForFunction((fees) => document.getElementById('fees').textContent === fees, expected.fees);

  const read = async (id) => (await page.textContent(`#${id}`)).trim();
  assert.equal(await read('filled'), String(expected.filledQty));
  assert.equal(await read('unfilled'), String(expected.unfilledQty));
  assert.equal(await read('avg'), expected.avgPrice);
  assert.equal(await read('worst'), expected.worstPrice);
  assert.equal(await read('fees'), expected.fees);
  assert.equal(await read('cash'), expected.cashDelta);
  assert.equal(await read('rests'), `${expected.rests.qty} @ ${expected.rests.price}`);
  assert.equal(await read('status'), expected.status);

  // A bad price shows the server's reject, not a crash.
  await page.fill('#price', '0.525');
  await page.waitForFunction(() => document.getElementById('reject').textContent.startsWith('PRICE_OFF_TICK'));
  await page.fill('#price', '0.52');
  await page.waitForFunction((fees) => document.getElementById('fees').textContent === fees, expected.fees);

  await page.screenshot({ path: new URL('../demo/screenshot.png', import.meta.url).pathname });
  assert.deepEqual(errors, []);
  console.log(`browser test passed: ${expected.filledQty} filled at ${expected.avgPrice}, fees ${expected.fees}`);
} finally {
  await browser.close();
  server.close();
}
