// Checkers for vigil's .NET tests, built on the real readers:
//   dump DUMP --dac LIBMSCORDACCORE [--min-threads N] [--thread-name NAME] [--string TEXT] [--no-heap] [--min-frames N]
//       ClrMD opens a Linux core written by the runtime, lists managed threads and walks the
//       whole heap (--no-heap: Mini and Triage dumps, which hold stacks but no heap). Exit 0 only if the runtime is found, the heap is walkable and the
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
        Console.Error.WriteLine("usage: VigilDotnetChecker dump DUMP --dac PATH [--min-threads N] [--thread-name NAME] [--string TEXT] [--no-heap] [--min-frames N]");
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
        bool noHeap = args.Contains("--no-heap");
        int minFrames = int.Parse(Opt(args, "--min-frames") ?? "1");
        if (noHeap)
            threadName = text = null;

        // A truncated core can still look healthy to ClrMD if the lost tail is memory it never
        // reads: every segment must be wholly in the file.
        long end = ElfCoreEnd(path), size = new FileInfo(path).Length;
        if (end > size)
        {
            Console.Error.WriteLine($"FAIL: truncated core: segments end at {end}, the file has {size} bytes");
            return 1;
        }
        using DataTarget dt = DataTarget.LoadDump(path);
        if (dt.ClrVersions.Length == 0)
        {
            Console.Error.WriteLine("FAIL: no CLR in the dump");
            return 1;
        }
        ClrInfo info = dt.ClrVersions[0];
        // ClrMD 4.2 reads no version from a .NET 10 libcoreclr in a Linux core (0.0), so its own
        // DAC match check cannot work: match the runtime by build id instead, which is stricter.
        string coreclr = Path.Combine(Path.GetDirectoryName(dac)!, "libcoreclr.so");
        string want = Convert.ToHexString(ElfBuildId(coreclr));
        string got = Convert.ToHexString(info.BuildId.ToArray());
        Console.WriteLine($"libcoreclr build id {got}");
        if (got.Length == 0 || got != want)
        {
            Console.Error.WriteLine($"FAIL: the dump's libcoreclr (build id {got}) is not {coreclr} ({want})");
            return 1;
        }
        using ClrRuntime rt = info.CreateRuntime(dac, ignoreMismatch: true);
        var threads = rt.Threads.Where(t => t.IsAlive).ToList();
        Console.WriteLine($"clr {info.Version} flavor {info.Flavor}");
        Console.WriteLine($"managed threads {threads.Count}");

        // Names of managed threads: System.Threading.Thread objects on the heap.
        var names = new List<string>();
        long objects = 0, bytes = 0;
        bool found = text == null;
        // A dump taken as the runtime starts may have no GC heap yet: only touch it when asked.
        ClrHeap? heap = noHeap ? null : rt.Heap;
        if (heap != null && !heap.CanWalkHeap)
        {
            Console.Error.WriteLine("FAIL: the heap cannot be walked");
            return 1;
        }
        foreach (ClrObject o in heap?.EnumerateObjects() ?? Enumerable.Empty<ClrObject>())
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
        if (!noHeap && objects == 0)
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
        if (frames < minFrames)
        {
            Console.Error.WriteLine($"FAIL: {frames} managed frames, expected at least {minFrames}");
            fails++;
        }
        return fails == 0 ? 0 : 1;
    }

    // Where the last program header's data ends (the size a complete core has at least).
    private static long ElfCoreEnd(string path)
    {
        using var fs = File.OpenRead(path);
        var r = new BinaryReader(fs);
        byte[] ident = r.ReadBytes(16);
        if (ident.Length < 16 || ident[0] != 0x7f || ident[1] != (byte)'E' || ident[2] != (byte)'L' || ident[3] != (byte)'F' || ident[4] != 2)
            throw new InvalidDataException($"{path} is not a 64-bit ELF core");
        fs.Position = 0x10;
        if (r.ReadUInt16() != 4) // ET_CORE
            throw new InvalidDataException($"{path} is not an ELF core file");
        fs.Position = 0x20;
        long phoff = r.ReadInt64();
        fs.Position = 0x36;
        int phentsize = r.ReadUInt16(), phnum = r.ReadUInt16();
        long end = phoff + (long)phentsize * phnum;
        for (int i = 0; i < phnum; i++)
        {
            fs.Position = phoff + (long)i * phentsize + 8;
            long off = r.ReadInt64();
            fs.Position = phoff + (long)i * phentsize + 32;
            long filesz = r.ReadInt64();
            end = Math.Max(end, off + filesz);
        }
        return end;
    }

    // The GNU build id note of an ELF file (NT_GNU_BUILD_ID in a PT_NOTE segment).
    private static byte[] ElfBuildId(string path)
    {
        byte[] f = File.ReadAllBytes(path);
        if (f.Length < 64 || f[0] != 0x7f || f[1] != (byte)'E' || f[4] != 2)
            throw new InvalidDataException($"{path} is not a 64-bit ELF file");
        long phoff = BitConverter.ToInt64(f, 0x20);
        int phentsize = BitConverter.ToUInt16(f, 0x36), phnum = BitConverter.ToUInt16(f, 0x38);
        for (int i = 0; i < phnum; i++)
        {
            int ph = (int)phoff + i * phentsize;
            if (BitConverter.ToUInt32(f, ph) != 4) // PT_NOTE
                continue;
            long off = BitConverter.ToInt64(f, ph + 8), size = BitConverter.ToInt64(f, ph + 32);
            for (long p = off; p + 12 <= off + size;)
            {
                int namesz = BitConverter.ToInt32(f, (int)p), descsz = BitConverter.ToInt32(f, (int)p + 4);
                int type = BitConverter.ToInt32(f, (int)p + 8);
                long desc = p + 12 + ((namesz + 3) & ~3);
                if (type == 3 && namesz == 4 && f[p + 12] == (byte)'G' && f[p + 13] == (byte)'N' && f[p + 14] == (byte)'U')
                    return f[(int)desc..(int)(desc + descsz)];
                p = desc + ((descsz + 3) & ~3);
            }
        }
        throw new InvalidDataException($"{path} has no GNU build id");
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
