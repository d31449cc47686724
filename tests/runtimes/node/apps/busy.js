// Keeps its main thread busy in a named JavaScript function (for stacks and CPU profiles), with
// a short break every 200 ms, and prints a checksum line each second.
'use strict';
let rounds = 0;
function spinInsideBusyLoop(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x = (x + Math.sqrt(x + 1)) % 1e9;
  return x;
}
function tick() {
  spinInsideBusyLoop(200);
  rounds++;
  setImmediate(tick);
}
setInterval(() => console.log(`rounds ${rounds} ok`), 1000);
console.log(`ready ${process.pid}`);
tick();
