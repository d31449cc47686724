// Does nothing but keep its event loop alive (a timer once a second prints a line).
'use strict';
let n = 0;
setInterval(() => console.log(`idle ${++n} ok`), 1000);
console.log(`ready ${process.pid}`);
