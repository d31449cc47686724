// A heap of N small linked objects (N from argv[2], millions), kept alive, then idle: its V8
// heap snapshot is roughly 100 bytes per object. Prints "ready" once built.
'use strict';
const n = Math.round(Number(process.argv[2] || 5) * 1e6);
const keep = new Array(n);
let prev = null;
for (let i = 0; i < n; i++) {
  prev = { i, prev, tag: i % 7 === 0 ? 'seven' : 'other' };
  keep[i] = prev;
}
globalThis.keep = keep; // retained: a module-level const nobody captures is garbage
setInterval(() => {}, 1000);
console.log(`ready ${process.pid} ${n}`);
