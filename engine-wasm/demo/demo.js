// The order ticket: a book beside it and a preview that follows every keystroke, computed in
// the browser by the engine compiled to WASM. Offline it uses a generated book; with
// `?api=http://host:port&market=<id>` it mirrors that server's market (REST snapshot, then the
// `book:<id>` WebSocket stream, resyncing on a gap).
import init, { BookMirror } from '../pkg/web/engine_wasm.js';
import { offlineBook, offlineMarket } from './offline-book.js';

const $ = (id) => document.getElementById(id);
let mirror;

function renderBook() {
  const { bids, asks } = mirror.book();
  const row = (cls, level) => `<tr class="${cls}"><td>${level.price}</td><td>${level.qty}</td></tr>`;
  const rows = [...asks].reverse().map((l) => row('ask', l)).concat(bids.map((l) => row('bid', l)));
  $('book').querySelector('tbody').innerHTML = rows.join('');
  // The seq the book shows, for tests and for anyone curious.
  document.body.dataset.seq = String(mirror.seq);
}

function orderFromTicket() {
  const type = $('type').value;
  const order = {
    side: $('side').value,
    outcome: $('outcome').value,
    type,
    qty: Number.parseInt($('qty').value, 10),
    timeInForce: type === 'MARKET' ? ($('tif').value === 'FOK' ? 'FOK' : 'IOC') : $('tif').value,
  };
  if (type === 'LIMIT') order.price = $('price').value.trim();
  return order;
}

function show(preview) {
  const text = (value) => (value === null || value === undefined ? '–' : String(value));
  $('reject').textContent = preview.reject ? `${preview.reject.code}: ${preview.reject.message}` : '';
  $('status').textContent = text(preview.status) + (preview.cancelReason ? ` (${preview.cancelReason})` : '');
  $('filled').textContent = text(preview.filledQty);
  $('unfilled').textContent = text(preview.unfilledQty);
  $('avg').textContent = text(preview.avgPrice);
  $('worst').textContent = text(preview.worstPrice);
  $('slippage').textContent = text(preview.slippageBpsVsBest);
  $('slippage-mid').textContent = text(preview.slippageBpsVsMid);
  $('fees').textContent = preview.fees;
  $('cash').textContent = preview.cashDelta;
  $('locked').textContent = preview.cashLocked;
  $('rests').textContent = preview.rests ? `${preview.rests.qty} @ ${preview.rests.price}` : 'no';
  $('position').textContent = preview.position
    ? `${preview.position.yesShares} YES, ${preview.position.noShares} NO` : '–';
  $('fills').textContent = preview.fills.map((f) => `${f.qty} @ ${f.price} (fee ${f.fee})`).join(', ') || '–';
}

function update() {
  let preview;
  try {
    preview = mirror.preview(orderFromTicket(), { available: $('available').value.trim() || '0' });
  } catch (error) {
    preview = { reject: { code: 'BAD_REQUEST', message: String(error.message || error) }, fills: [], fees: '0.00', cashDelta: '0.00', cashLocked: '0.00' };
  }
  show(preview);
  document.body.dataset.previews = String(Number(document.body.dataset.previews || 0) + 1);
}

async function live(api, marketId) {
  const get = async (path) => (await fetch(`${api}/v1${path}`)).json();
  const market = await get(`/markets/${marketId}`);
  const snapshot = async () => {
    mirror = BookMirror.fromSnapshot(market, await get(`/markets/${marketId}/book?depth=100`));
  };
  await snapshot();
  $('question').textContent = market.question;
  $('source').textContent = `live: ${api}`;
  const socket = new WebSocket(`${api.replace(/^http/, 'ws')}/v1/ws`);
  socket.onopen = () => socket.send(JSON.stringify({ op: 'subscribe', topic: `book:${marketId}`, fromSeq: mirror.seq }));
  socket.onmessage = async (event) => {
    const message = JSON.parse(event.data);
    if (message.topic !== `book:${marketId}` || !['snapshot', 'delta'].includes(message.type)) return;
    if (mirror.applyDelta(message) === 'resync') await snapshot();
    renderBook();
    update();
  };
}

async function main() {
  await init();
  const params = new URLSearchParams(window.location.search);
  if (params.get('api') && params.get('market')) {
    await live(params.get('api'), params.get('market'));
  } else {
    mirror = BookMirror.fromSnapshot(offlineMarket, offlineBook());
    $('question').textContent = offlineMarket.question;
    $('source').textContent = 'offline: a generated book';
  }
  renderBook();
  for (const input of document.querySelectorAll('#ticket input, #ticket select')) {
    input.addEventListener('input', update);
  }
  update();
  document.body.dataset.ready = 'true';
}

main().catch((error) => {
  $('reject').textContent = `failed to start: ${error}`;
});
