// tracecheck: reads a nettrace file with TraceEvent (Microsoft.Diagnostics.Tracing.TraceEvent) and
// prints what vigil's parser must also find, in the format of tests/nettrace/nettrace_dump --exact:
//   tracecheck [--events] [--counters] [--metrics] [--logs] [--requests] FILE
//   tracecheck --bench N FILE     parse the file N times (after one untimed pass that JIT-compiles
//                                 the reader), print "bench BYTES SECONDS EVENTS"
// Exit status: 0 the whole trace was read, 1 it is truncated or corrupt (the reason on stderr),
// 2 usage. Doubles are printed as their 64-bit patterns so the comparison is exact.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Diagnostics.Tracing;

var opts = new HashSet<string>(args.Where(a => a.StartsWith("--")));
var files = args.Where(a => !a.StartsWith("--")).ToList();
int benchRuns = 0;
if (opts.Contains("--bench"))
{
    if (files.Count != 2 || !int.TryParse(files[0], out benchRuns) || benchRuns < 1) return Usage();
    files.RemoveAt(0);
}
if (files.Count != 1) return Usage();
string path = files[0];
Console.OutputEncoding = new UTF8Encoding(false);

if (benchRuns > 0)
{
    long bytes = new FileInfo(path).Length;
    long events = 0;
    var sw = new Stopwatch();
    for (int i = 0; i <= benchRuns; i++)
    {
        if (i == 1)
        {
            events = 0;
            sw.Start();
        }
        using var src = new EventPipeEventSource(path);
        src.Dynamic.All += e => events++;
        src.UnhandledEvents += e => events++;
        src.Process();
    }
    sw.Stop();
    Console.WriteLine($"bench {bytes * benchRuns} {sw.Elapsed.TotalSeconds.ToString("R", CultureInfo.InvariantCulture)} {events}");
    return 0;
}

var lines = new List<string>();
var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
long total = 0, unhandled = 0;
string? failure = null;
try
{
    using var source = new EventPipeEventSource(path);
    // Dynamic.All: every event, named from the trace's own metadata (AllEvents would only name
    // the providers TraceEvent has a built-in parser for).
    source.Dynamic.All += e =>
    {
        total++;
        string key = $"{e.ProviderName} {(int)e.ID}";
        counts[key] = counts.TryGetValue(key, out long n) ? n + 1 : 1;
        string name = (e.EventName ?? "").Replace("/", "");
        if (opts.Contains("--counters") && name == "EventCounters") Counter(e);
        else if (opts.Contains("--metrics") && e.ProviderName == "System.Diagnostics.Metrics") Metric(e, name);
        else if (opts.Contains("--logs") && e.ProviderName == "Microsoft-Extensions-Logging") Log(e, name);
        else if (opts.Contains("--requests") && e.ProviderName == "Microsoft-Diagnostics-DiagnosticSource") Request(e, name);
    };
    source.UnhandledEvents += e => unhandled++;
    source.Process();
}
catch (Exception ex)
{
    failure = $"{ex.GetType().Name}: {ex.Message}";
}
if (failure == null) failure = CheckEnd(path);
if (failure != null)
{
    Console.Error.WriteLine($"tracecheck: {path}: {failure}");
    return 1;
}
if (opts.Contains("--events"))
{
    Console.WriteLine($"events {total + unhandled}");
    foreach (var kv in counts) Console.WriteLine($"event {kv.Key} {kv.Value}");
}
foreach (var l in lines) Console.WriteLine(l);
return 0;

void Counter(TraceEvent e)
{
    if (e.PayloadValue(0) is not IDictionary<string, object> outer || outer["Payload"] is not IDictionary<string, object> p)
        throw new InvalidDataException("EventCounters without Payload");
    bool sum = (p.TryGetValue("CounterType", out var t) ? t as string : null) == "Sum";
    double v = Convert.ToDouble(sum ? p["Increment"] : p["Mean"], CultureInfo.InvariantCulture);
    double iv = Convert.ToDouble(p["IntervalSec"], CultureInfo.InvariantCulture);
    lines.Add($"counter {e.ProviderName} {p["Name"]} {(sum ? "sum" : "mean")} {Bits(v)} {Bits(iv)}");
}

void Metric(TraceEvent e, string name)
{
    string S(string f) => e.PayloadByName(f) as string ?? "";
    string N(string s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && s.Length > 0 ? Bits(d) : "-";
    string head = $"{S("meterName")} {S("instrumentName")} [{S("tags")}]";
    switch (name)
    {
        case "CounterRateValuePublished":
        case "UpDownCounterRateValuePublished":
            lines.Add($"metric {(name.StartsWith("UpDown") ? "updown" : "counter")} {head} {N(S("rate"))} {N(S("value"))}");
            break;
        case "GaugeValuePublished":
            lines.Add($"metric gauge {head} {N(S("lastValue"))}");
            break;
        case "HistogramValuePublished":
            var q = new StringBuilder();
            foreach (var part in S("quantiles").Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = part.Split('=');
                if (kv.Length == 2) q.Append($" {N(kv[0])}={N(kv[1])}");
            }
            long count = Convert.ToInt64(e.PayloadByName("count"), CultureInfo.InvariantCulture);
            double s = Convert.ToDouble(e.PayloadByName("sum"), CultureInfo.InvariantCulture);
            lines.Add($"metric histogram {head}{q} count={count} sum={Bits(s)}");
            break;
    }
}

void Log(TraceEvent e, string name)
{
    string S(string f) => Esc(e.PayloadByName(f) as string ?? "");
    int I(string f) => Convert.ToInt32(e.PayloadByName(f), CultureInfo.InvariantCulture);
    switch (name)
    {
        case "FormattedMessage":
            lines.Add($"log formatted {I("Level")} {S("LoggerName")} {I("EventId")} {S("FormattedMessage")}");
            break;
        case "MessageJson":
            lines.Add($"log json {I("Level")} {S("LoggerName")} {I("EventId")} {S("FormattedMessage")} {S("ArgumentsJson")} {S("ExceptionJson")}");
            break;
        case "ActivityJsonStart":
            lines.Add($"log scope-start {I("ID")} {S("LoggerName")} {S("ArgumentsJson")}");
            break;
        case "ActivityJsonStop":
            lines.Add($"log scope-stop {I("ID")} {S("LoggerName")}");
            break;
    }
}

void Request(TraceEvent e, string name)
{
    if (name != "Activity1Start" && name != "Activity1Stop") return;
    string ev = e.PayloadByName("EventName") as string ?? "";
    if (!ev.StartsWith("Microsoft.AspNetCore.Hosting.HttpRequestIn.")) return;
    string id = "", path = "", status = "-", duration = "-";
    foreach (var a in (System.Collections.IList)e.PayloadByName("Arguments"))
    {
        var kv = (IEnumerable<KeyValuePair<string, object>>)a;
        string k = (string)kv.First().Value, v = (string)kv.Last().Value;
        if (k.Equals("ActivityId", StringComparison.OrdinalIgnoreCase)) id = v;
        else if (k.Equals("Path", StringComparison.OrdinalIgnoreCase)) path = v;
        else if (k.Equals("StatusCode", StringComparison.OrdinalIgnoreCase)) status = v;
        else if (k.Equals("ActivityDuration", StringComparison.OrdinalIgnoreCase)) duration = v;
    }
    lines.Add($"request {(name == "Activity1Stop" ? "stop" : "start")} {id} {Esc(path)} {status} {duration}");
}

static string Bits(double d) => BitConverter.DoubleToInt64Bits(d).ToString("x16", CultureInfo.InvariantCulture);

// Control characters and backslashes escaped the same way as nettrace_dump does.
static string Esc(string s)
{
    var b = new StringBuilder(s.Length);
    foreach (char c in s)
    {
        if (c < 0x20 || c == '\\') b.Append($"\\x{(int)c:x2}");
        else b.Append(c);
    }
    return b.ToString();
}

// TraceEvent throws on a stream cut anywhere (checked by the tests); this also requires the
// end-of-stream tag (NullReference, the byte 1) to be the file's last byte.
static string? CheckEnd(string path)
{
    using var f = File.OpenRead(path);
    if (f.Length < 1) return "empty file";
    f.Seek(-1, SeekOrigin.End);
    return f.ReadByte() == 1 ? null : "no end-of-stream tag: the trace is truncated";
}

static int Usage()
{
    Console.Error.WriteLine("usage: tracecheck [--events] [--counters] [--metrics] [--logs] [--requests] FILE | --bench N FILE");
    return 2;
}
