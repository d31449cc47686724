// vigil's .NET test app: one process whose behaviour is chosen by command-line switches, so every
// test (IPC, dumps, EventPipe) can reuse it. Switches are documented in README.md; to add one, add
// an entry to Switches below (name, argument count, help, action) and a line to the README.
using System.Collections.Concurrent;
using System.Diagnostics;

namespace VigilTestApp;

public static class Program
{
    // Objects kept reachable so a heap walk in a dump finds them.
    private static readonly List<object> Rooted = new();
    private static readonly ConcurrentBag<Thread> Threads = new();
    private static volatile bool stop;

    private sealed record Switch(string Name, int Args, string Help, Action<string[]> Run);

    private static readonly Switch[] Switches =
    {
        new("--tag", 1, "TEXT: does nothing; a test finds its own process by TEXT in the command line", a => { }),
        new("--check-file", 1, "PATH: the first line says whether PATH existed at start (marker=present|absent)",
            a => checkFile = a[0]),
        new("--burn-cpu", 1, "N: N threads spinning forever", a => StartThreads(int.Parse(a[0]), "burner", Burn)),
        new("--alloc", 1, "MB: allocate MB megabytes per second, keeping the last 64 MB reachable",
            a => StartThreads(1, "allocator", () => Allocate(int.Parse(a[0])))),
        new("--retain", 1, "MB: allocate and keep MB megabytes at start", a => Retain(int.Parse(a[0]))),
        new("--throw", 1, "N: throw and catch N exceptions per second", a => StartThreads(1, "thrower", () => Throw(int.Parse(a[0])))),
        new("--threads", 1, "N: N named sleeping managed threads (vigil-sleeper-I)",
            a => StartThreads(int.Parse(a[0]), "vigil-sleeper", () => { while (!stop) Thread.Sleep(100); })),
        new("--plant", 1, "TEXT: keep a string TEXT reachable (for heap walks)", a => Rooted.Add(new string(a[0].AsSpan()))),
        new("--watch-env", 1, "NAME: print 'env NAME=VALUE' whenever the variable changes (100 ms polling)",
            a => StartThreads(1, "env-watcher", () => WatchEnv(a[0]))),
        new("--crash-after", 1, "MS: throw an unhandled exception after MS milliseconds", a => CrashAfter(int.Parse(a[0]))),
        new("--exit-after", 1, "MS: exit 0 after MS milliseconds", a => ExitAfter(int.Parse(a[0]))),
        new("--tick", 1, "MS: print 'tick N' every MS milliseconds", a => StartThreads(1, "ticker", () => Tick(int.Parse(a[0])))),
    };

    private static string? checkFile;

    public static int Main(string[] args)
    {
        var actions = new List<Action>();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--help")
            {
                foreach (var s in Switches)
                    Console.WriteLine($"{s.Name} {s.Help}");
                return 0;
            }
            var sw = Array.Find(Switches, s => s.Name == args[i]);
            if (sw == null || i + sw.Args >= args.Length)
            {
                Console.Error.WriteLine($"unknown switch or missing argument: {args[i]} (try --help)");
                return 2;
            }
            string[] a = args[(i + 1)..(i + 1 + sw.Args)];
            i += sw.Args;
            if (sw.Name == "--check-file")
                sw.Run(a);
            else
                actions.Add(() => sw.Run(a));
        }
        // The first line, before any switch acts: with --check-file it proves what ran before Main
        // (a Startup rule's Execute action on a suspended runtime).
        string marker = checkFile == null ? "" : $" marker={(File.Exists(checkFile) ? "present" : "absent")}";
        Console.WriteLine($"started pid={Environment.ProcessId}{marker}");
        foreach (var act in actions)
            act();
        // Runs until killed, stdin closes with "quit", or a timed switch ends it.
        string? line;
        while ((line = Console.ReadLine()) != null)
        {
            if (line == "quit")
                break;
        }
        if (line == null)
            Thread.Sleep(Timeout.Infinite); // stdin closed (e.g. /dev/null): keep running
        stop = true;
        return 0;
    }

    private static void StartThreads(int n, string name, Action body)
    {
        for (int i = 0; i < n; i++)
        {
            var t = new Thread(() => body()) { IsBackground = true, Name = $"{name}-{i}" };
            Threads.Add(t);
            t.Start();
        }
    }

    private static void Burn()
    {
        double x = 1;
        while (!stop)
            x = Math.Sqrt(x + 1.5);
        GC.KeepAlive(x);
    }

    private static void Allocate(int mbPerSecond)
    {
        var window = new Queue<byte[]>();
        while (!stop)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < mbPerSecond * 16; i++)
            {
                var b = new byte[64 * 1024];
                b[0] = 1;
                window.Enqueue(b);
                if (window.Count > 64 * 16)
                    window.Dequeue();
            }
            int left = 1000 - (int)sw.ElapsedMilliseconds;
            if (left > 0)
                Thread.Sleep(left);
        }
    }

    private static void Retain(int mb)
    {
        for (int i = 0; i < mb; i++)
        {
            var b = new byte[1024 * 1024];
            Array.Fill(b, (byte)0x5a);
            Rooted.Add(b);
        }
    }

    private static void Throw(int perSecond)
    {
        int pause = perSecond > 0 ? Math.Max(1, 1000 / perSecond) : 1000;
        while (!stop)
        {
            try
            {
                throw new InvalidOperationException("vigil test exception");
            }
            catch (InvalidOperationException)
            {
            }
            Thread.Sleep(pause);
        }
    }

    private static void WatchEnv(string name)
    {
        string? last = null;
        bool first = true;
        while (!stop)
        {
            string? v = Environment.GetEnvironmentVariable(name);
            if (first || v != last)
                Console.WriteLine($"env {name}={v ?? "<unset>"}");
            first = false;
            last = v;
            Thread.Sleep(100);
        }
    }

    private static void CrashAfter(int ms)
    {
        var t = new Thread(() =>
        {
            Thread.Sleep(ms);
            throw new InvalidOperationException("vigil test crash");
        }) { IsBackground = true, Name = "crasher" };
        t.Start();
    }

    private static void ExitAfter(int ms)
    {
        var t = new Thread(() =>
        {
            Thread.Sleep(ms);
            Environment.Exit(0);
        }) { IsBackground = true, Name = "exiter" };
        t.Start();
    }

    private static void Tick(int ms)
    {
        for (long n = 1; !stop; n++)
        {
            Thread.Sleep(ms);
            Console.WriteLine($"tick {n}");
        }
    }
}
