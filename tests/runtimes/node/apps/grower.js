// Grows its heap by ~1 MB of live objects every STEP_MS until GROW_MB, then keeps it, and prints
// a running checksum once a second so a test can check the app still works while it is inspected.
'use strict';
const step = Number(process.env.STEP_MS || 50);
const target = Number(process.env.GROW_MB || 64);
const keep = [];
let n = 0;
let sum = 0;
class Leak { constructor(i) { this.i = i; this.payload = 'x'.repeat(1000) + i; } }
setInterval(() => {
  if (keep.length < target) {
    const batch = [];
    for (let i = 0; i < 1000; i++) batch.push(new Leak(n * 1000 + i));
    keep.push(batch);
  }
  n++;
  sum = (sum + n) % 1000003;
}, step);
setInterval(() => {
  // n*(n+1)/2 mod p, recomputed independently: the line is "tick N sum S ok|BAD".
  const want = Number((BigInt(n) * BigInt(n + 1) / 2n) % 1000003n);
  console.log(`tick ${n} sum ${sum} ${want === sum ? 'ok' : 'BAD'} heapMB ${keep.length}`);
}, 1000);
console.log(`ready ${process.pid}`);
