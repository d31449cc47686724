// Checkers for vigil's .NET tests, built on the real readers:
//   dump DUMP --dac LIBMSCORDACCORE [--min-threads N] [--thread-name NAME] [--string TEXT]
//       ClrMD opens a Linux core written by the runtime, lists managed threads and walks the
//       whole heap. Exit 0 only if the runtime is found, the heap is walkable and the
//       expectations hold; 1 otherwise (bad, truncated or wrong dump).
//   processinfo PID
//       Microsoft.Diagnostics.NETCore.Client's ProcessInfo for PID (its own connect-mode
//       client), printed as KEY=VALUE lines for a test to compare with vigil's.
//   environment PID NAME
//       NETCore.Client's view of one environment variable (VALUE or <unset>).
using System.Reflection;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Runtime;

namespace VigilDotnetChecker;

public static class Program
{
    public static int Main(string[] args)
    {
        try
        {
            return args.Length > 0 ? args[0] switch
            {
                "dump" => CheckDump(args[1..]),
                "processinfo" => ProcessInfo(args[1..]),
                "environment" => EnvironmentVar(args[1..]),
                _ => Usage(),
            } : Usage();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"FAIL: {e.GetType().Name}: {e.Message}");
            return 1;
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: VigilDotnetChecker dump DUMP --dac PATH [--min-threads N] [--thread-name NAME] [--string TEXT]");
        Console.Error.WriteLine("       VigilDotnetChecker processinfo PID | environment PID NAME");
        return 2;
    }

    private static string? Opt(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static int CheckDump(string[] args)
    {
        string path = args[0];
        string dac = Opt(args, "--dac") ?? throw new ArgumentException("--dac is required");
        int minThreads = int.Parse(Opt(args, "--min-threads") ?? "1");
        string? threadName = Opt(args, "--thread-name");
        string? text = Opt(args, "--string");

        using DataTarget dt = DataTarget.LoadDump(path);
        if (dt.ClrVersions.Length == 0)
        {
            Console.Error.WriteLine("FAIL: no CLR in the dump");
            return 1;
        }
        ClrInfo info = dt.ClrVersions[0];
        using ClrRuntime rt = info.CreateRuntime(dac, ignoreMismatch: false);
        var threads = rt.Threads.Where(t => t.IsAlive).ToList();
        Console.WriteLine($"clr {info.Version} flavor {info.Flavor}");
        Console.WriteLine($"managed threads {threads.Count}");

        // Names of managed threads: System.Threading.Thread objects on the heap.
        var names = new List<string>();
        long objects = 0, bytes = 0;
        bool found = text == null;
        ClrHeap heap = rt.Heap;
        if (!heap.CanWalkHeap)
        {
            Console.Error.WriteLine("FAIL: the heap cannot be walked");
            return 1;
        }
        foreach (ClrObject o in heap.EnumerateObjects())
        {
            if (!o.IsValid)
            {
                Console.Error.WriteLine($"FAIL: invalid object at 0x{o.Address:x}");
                return 1;
            }
            objects++;
            bytes += (long)o.Size;
            string? type = o.Type?.Name;
            if (type == "System.Threading.Thread")
            {
                string? n = o.ReadStringField("_name");
                if (n != null)
                    names.Add(n);
            }
            else if (!found && type == "System.String" && o.AsString(text!.Length + 1) == text)
            {
                found = true;
            }
        }
        Console.WriteLine($"heap objects {objects} bytes {bytes}");
        Console.WriteLine($"thread names {string.Join(",", names.OrderBy(s => s))}");
        int fails = 0;
        if (objects == 0)
        {
            Console.Error.WriteLine("FAIL: empty heap");
            fails++;
        }
        if (threads.Count < minThreads)
        {
            Console.Error.WriteLine($"FAIL: {threads.Count} managed threads, expected at least {minThreads}");
            fails++;
        }
        if (threadName != null && !names.Any(n => n.StartsWith(threadName, StringComparison.Ordinal)))
        {
            Console.Error.WriteLine($"FAIL: no managed thread named {threadName}*");
            fails++;
        }
        if (!found)
        {
            Console.Error.WriteLine($"FAIL: string \"{text}\" not on the heap");
            fails++;
        }
        // Stacks must resolve to managed methods on at least one thread.
        int frames = threads.Sum(t => t.EnumerateStackTrace().Count(f => f.Method != null));
        Console.WriteLine($"managed frames {frames}");
        if (frames == 0)
        {
            Console.Error.WriteLine("FAIL: no managed frame on any thread");
            fails++;
        }
        return fails == 0 ? 0 : 1;
    }

    // ProcessInfo is internal in NETCore.Client; its public GetProcessInfo path is what
    // dotnet-monitor uses, reached here by reflection.
    private static int ProcessInfo(string[] args)
    {
        var client = new DiagnosticsClient(int.Parse(args[0]));
        MethodInfo m = typeof(DiagnosticsClient).GetMethod("GetProcessInfo", BindingFlags.Instance | BindingFlags.NonPublic)
            ?? throw new MissingMethodException("DiagnosticsClient.GetProcessInfo");
        object pi = m.Invoke(client, null) ?? throw new InvalidOperationException("no ProcessInfo");
        foreach (string p in new[] { "ProcessId", "RuntimeInstanceCookie", "CommandLine", "OperatingSystem",
                                      "ProcessArchitecture", "ManagedEntrypointAssemblyName",
                                      "ClrProductVersionString", "PortableRuntimeIdentifier" })
        {
            object? v = pi.GetType().GetProperty(p)?.GetValue(pi);
            Console.WriteLine($"{p}={v}");
        }
        return 0;
    }

    private static int EnvironmentVar(string[] args)
    {
        var client = new DiagnosticsClient(int.Parse(args[0]));
        Dictionary<string, string> env = client.GetProcessEnvironment();
        Console.WriteLine(env.TryGetValue(args[1], out string? v) ? v : "<unset>");
        return 0;
    }
}
