// The demo's offline market and book: deterministic, so the browser test can compute the
// expected preview from the same data. (Shared by demo.js in the browser and the Node test.)
export const offlineMarket = {
  id: 'offline', slug: 'btc-50k-by-december', question: 'Will BTC reach $50k by December 31?',
  tickSize: '0.01', minQty: 1, maxQty: 100000, makerFeeRate: '0', takerFeeRate: '0.07',
};

/** Ten levels a side around 0.50, sizes growing away from the middle. */
export function offlineBook() {
  const level = (cents, qty) => ({ price: (cents / 100).toFixed(2), qty });
  return {
    marketId: 'offline',
    seq: 1,
    bids: Array.from({ length: 10 }, (_, i) => level(49 - i, 20 + 15 * i)),
    asks: Array.from({ length: 10 }, (_, i) => level(51 + i, 25 + 10 * i)),
  };
}
