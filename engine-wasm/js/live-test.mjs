// The demo's live mode against a real exchange: starts `server --demo` (its bots keep a book
// moving), opens the demo page in headless Chromium with `?api=...&market=...`, and checks that
// the book the page shows — a REST snapshot stitched to the `book:` WebSocket stream by the
// WASM mirror — equals the server's REST book at the same seq, several times as it moves.
// `SERVER_BIN` names the server binary.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const MATCHES = 4;
const DEADLINE_MS = 60_000;

const freePort = () => new Promise((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const pages = await serve(0);
const origin = `http://127.0.0.1:${pages.address().port}`;
const api = `http://127.0.0.1:${await freePort()}`;
const dataDir = mkdtempSync(join(tmpdir(), 'predex-live-'));
const exchange = spawn(process.env.SERVER_BIN || 'server', ['--demo'], {
  env: { ...process.env, BIND_ADDR: api.slice('http://'.length), DATA_DIR: dataDir,
    CORS_ALLOWED_ORIGINS: origin, LOG_FORMAT: 'json', RUST_LOG: 'warn' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const get = async (path) => {
  const response = await fetch(`${api}${path}`);
  assert.equal(response.status, 200, path);
  return response.json();
};
let browser;
try {
  for (let tries = 0; ; tries++) {
    try {
      if ((await fetch(`${api}/readyz`)).status === 200) break;
    } catch {}
    assert.ok(tries < 600, 'the exchange did not become ready');
    await sleep(100);
  }
  let market;
  for (let tries = 0; !market; tries++) {
    const markets = await get('/v1/markets');
    market = markets.data.find((m) => m.slug === 'team-a-wins-the-final');
    assert.ok(market || tries < 100, 'the demo market was not seeded');
    if (!market) await sleep(100);
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${origin}/demo/?api=${encodeURIComponent(api)}&market=${market.id}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
  assert.match(await page.textContent('#source'), /^live: /);
  const firstSeq = Number(await page.getAttribute('body', 'data-seq'));

  // The page's book and the REST book, compared whenever both are at the same seq.
  const seen = new Set();
  const started = Date.now();
  while (seen.size < MATCHES) {
    assert.ok(Date.now() - started < DEADLINE_MS, `only ${seen.size} matching seqs seen`);
    const rest = await get(`/v1/markets/${market.id}/book?depth=100`);
    const shown = await page.evaluate(() => ({
      seq: Number(document.body.dataset.seq),
      rows: [...document.querySelectorAll('#book tbody tr')].map((tr) => ({
        side: tr.className, price: tr.cells[0].textContent, qty: Number(tr.cells[1].textContent),
      })),
    }));
    if (shown.seq !== rest.seq) {
      await sleep(20);
      continue;
    }
    const expected = [...rest.asks].reverse().map((l) => ({ side: 'ask', ...l }))
      .concat(rest.bids.map((l) => ({ side: 'bid', ...l })));
    assert.deepEqual(shown.rows, expected, `the page's book at seq ${rest.seq}`);
    seen.add(rest.seq);
    await sleep(300);
  }
  const seqs = [...seen];
  assert.ok(Math.max(...seqs) > firstSeq, 'the page followed the stream past its snapshot');
  assert.deepEqual(errors, []);
  console.log(`live demo: the page's book equalled REST at seqs ${seqs.join(', ')} (snapshot at ${firstSeq})`);
} finally {
  await browser?.close();
  exchange.kill('SIGTERM');
  pages.close();
  await sleep(500);
  rmSync(dataDir, { recursive: true, force: true });
}
