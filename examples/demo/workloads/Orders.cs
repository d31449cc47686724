// vigil's .NET demo workload (run by scripts/demo.sh as a file-based app: `dotnet run Orders.cs`):
// a pretend order service that records each order's duration in a System.Diagnostics.Metrics
// histogram. After 15 s one order in ten takes 300 ms more, so the histogram's 95th percentile,
// which the runtime publishes over EventPipe, passes the demo rule's 200 ms.
// File-based apps turn EventSources off by default (as trimmed and AOT apps do): no counters or
// meters would reach vigil, which would say so in its log and in the rule's lastError.
#:property EventSourceSupport=true
using System.Diagnostics;
using System.Diagnostics.Metrics;

var meter = new Meter("Vigil.Demo", "1.0");
var duration = meter.CreateHistogram<double>("order-duration", "ms", "time to process an order");
var orders = meter.CreateCounter<long>("orders", "{order}", "orders processed");
Console.WriteLine($"order service {Environment.ProcessId} running");
var started = Stopwatch.StartNew();
var rnd = new Random(1);
for (long n = 0; started.Elapsed < TimeSpan.FromMinutes(10); n++)
{
    var slow = started.Elapsed > TimeSpan.FromSeconds(15) && n % 10 == 0;
    var work = Stopwatch.StartNew();
    double x = 1;
    while (work.ElapsedMilliseconds < rnd.Next(5, 40) + (slow ? 300 : 0))
        x = Math.Sqrt(x + 1.5); // the CPU the trace shows
    GC.KeepAlive(x);
    duration.Record(work.Elapsed.TotalMilliseconds);
    orders.Add(1);
    Thread.Sleep(20);
}
