// tracegen: a .NET process that produces every kind of EventPipe data vigil parses, so tests and
// fixtures trace a real runtime. Workloads are switched on by arguments:
//   cpu      burn one core                    alloc   allocate and keep ~64 MB live
//   throw    throw and catch 20 exceptions/s  meter   a custom Meter (counter, histogram, gauges)
//   log      Microsoft.Extensions.Logging at several levels and in two categories, with nested
//            scopes, an event name and an exception
//   web      Kestrel on 127.0.0.1:0 and a bounded client loop: /ok (200), /fail (500), /health
//   --seconds N   exit after N seconds (default: when stdin closes)
// It prints "ready PID PORT" once every workload runs (PORT is 0 without web).
using System.Diagnostics;
using System.Diagnostics.Metrics;

var modes = new HashSet<string>(args.Where(a => !a.StartsWith("--")));
int seconds = 0;
for (int i = 0; i < args.Length - 1; i++)
    if (args[i] == "--seconds") seconds = int.Parse(args[i + 1]);

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.Logging.AddEventSourceLogger();
builder.Logging.SetMinimumLevel(LogLevel.Trace);
builder.WebHost.UseUrls("http://127.0.0.1:0");
var app = builder.Build();
app.MapGet("/ok", () => "ok");
app.MapGet("/fail", () => Results.StatusCode(500));
app.MapGet("/health", () => "healthy");
app.MapGet("/slow", async () => { await Task.Delay(50); return "slow"; });

var stop = new CancellationTokenSource();
var tasks = new List<Task>();
int port = 0;
if (modes.Contains("web"))
{
    await app.StartAsync();
    var addr = app.Urls.First();
    port = new Uri(addr).Port;
    tasks.Add(Task.Run(() => Client(addr, stop.Token)));
}

if (modes.Contains("cpu"))
    tasks.Add(Task.Factory.StartNew(() => { double x = 1; while (!stop.IsCancellationRequested) x = Math.Sqrt(x + 1.5); GC.KeepAlive(x); }, TaskCreationOptions.LongRunning));

if (modes.Contains("alloc"))
    tasks.Add(Task.Run(async () =>
    {
        var live = new Queue<byte[]>();
        while (!stop.IsCancellationRequested)
        {
            live.Enqueue(new byte[64 * 1024]);
            if (live.Count > 1024) live.Dequeue();
            for (int i = 0; i < 200; i++) GC.KeepAlive(new object[8]);
            await Task.Delay(2);
        }
    }));

if (modes.Contains("throw"))
    tasks.Add(Task.Run(async () =>
    {
        while (!stop.IsCancellationRequested)
        {
            try { throw new InvalidOperationException("tracegen throws on purpose"); } catch (InvalidOperationException) { }
            await Task.Delay(50);
        }
    }));

if (modes.Contains("meter"))
{
    var meter = new Meter("Vigil.TraceGen", "1.0");
    var made = meter.CreateCounter<long>("work-items", "{item}", "work items done");
    var duration = meter.CreateHistogram<double>("work-duration", "ms", "time per work item");
    var queue = meter.CreateUpDownCounter<int>("queue-depth", "{item}");
    int temp = 40;
    meter.CreateObservableGauge("temperature", () => Volatile.Read(ref temp), "Cel");
    long total = 0;
    // tags named as vigil's own /metrics labels, a value that needs escaping
    meter.CreateObservableCounter("bytes-seen", () => new Measurement<long>(Interlocked.Read(ref total),
        new KeyValuePair<string, object?>("name", "q\"1\\"), new KeyValuePair<string, object?>("pid", "7")), "By");
    tasks.Add(Task.Run(async () =>
    {
        var rnd = new Random(7);
        int n = 0;
        while (!stop.IsCancellationRequested)
        {
            made.Add(1, new KeyValuePair<string, object?>("kind", n % 2 == 0 ? "even" : "odd"));
            duration.Record(rnd.NextDouble() * 100 + (n % 10 == 0 ? 400 : 0));
            queue.Add(n % 3 == 0 ? -1 : 1);
            Interlocked.Add(ref total, 4096);
            Volatile.Write(ref temp, 40 + n % 5);
            n++;
            await Task.Delay(10);
        }
    }));
}

if (modes.Contains("log"))
{
    var factory = app.Services.GetRequiredService<ILoggerFactory>();
    var logger = factory.CreateLogger("Vigil.TraceGen.Worker");
    var chatty = factory.CreateLogger("Vigil.TraceGen.Chatty");
    tasks.Add(Task.Run(async () =>
    {
        int n = 0;
        while (!stop.IsCancellationRequested)
        {
            using (logger.BeginScope("batch {Batch}", n / 10))
            using (logger.BeginScope(new List<KeyValuePair<string, object>> { new("Worker", "w1") }))
            {
                logger.LogInformation(new EventId(42, "ItemDone"), "work item {Item} done in {Elapsed,4} ms", n, n % 17);
                if (n % 5 == 0) logger.LogWarning("queue depth {Depth} above {Limit}", n % 40, 30);
                if (n % 20 == 0)
                {
                    try { throw new InvalidOperationException("boom " + n); }
                    catch (InvalidOperationException e) { logger.LogError(e, "item {Item} failed", n); }
                }
                logger.LogDebug("debug {Item}", n);
            }
            chatty.LogInformation("chatty {N}", n);
            n++;
            await Task.Delay(20);
        }
    }));
}

Console.Out.WriteLine($"ready {Environment.ProcessId} {port}");
Console.Out.Flush();
// SIGTERM stops the web host (its lifetime takes the signal); it also ends the wait here.
app.Lifetime.ApplicationStopping.Register(() => stop.Cancel());
try
{
    if (seconds > 0)
        await Task.Delay(TimeSpan.FromSeconds(seconds), stop.Token);
    else
        await Task.Run(() => { while (Console.In.Read() >= 0) { } }).WaitAsync(stop.Token);
}
catch (OperationCanceledException) { }
stop.Cancel();
try { await Task.WhenAll(tasks); } catch (OperationCanceledException) { }
if (modes.Contains("web")) await app.StopAsync();
return 0;

static async Task Client(string baseUrl, CancellationToken ct)
{
    // Bounded: at most ~100 requests a second, only to this process's own loopback listener.
    using var http = new HttpClient { BaseAddress = new Uri(baseUrl) };
    string[] paths = { "/ok", "/ok", "/fail", "/health", "/slow" };
    int i = 0;
    while (!ct.IsCancellationRequested)
    {
        try { using var r = await http.GetAsync(paths[i++ % paths.Length], ct); } catch (Exception) when (ct.IsCancellationRequested) { break; } catch (HttpRequestException) { }
        try { await Task.Delay(10, ct); } catch (OperationCanceledException) { break; }
    }
}
