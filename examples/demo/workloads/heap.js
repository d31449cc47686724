// Demo workload for Node: keeps 2 MB more of live objects every second, up to 80 MB, then holds
// them. Run by scripts/demo.sh with --inspect on loopback (its own inspector; vigil reads the
// V8 heap through it and takes a heap snapshot when the DemoNodeHeap rule fires).
'use strict';
const keep = [];
setInterval(() => {
  if (keep.length < 40) keep.push(Array.from({ length: 20000 }, (_, i) => ({ i, s: `item ${i}` })));
}, 1000);
console.log(`ready ${process.pid}`);
