// Prints "ready PID", then throws an exception nobody catches: the runtime prints it, may write
// its own dump (DOTNET_DbgEnableMiniDump), and aborts (SIGABRT), which the kernel hands to
// core_pattern. An argument of seconds delays the crash.
var pid = Environment.ProcessId;
Console.WriteLine($"ready {pid}");
Console.Out.Flush();
if (args.Length > 0)
    Thread.Sleep(TimeSpan.FromSeconds(int.Parse(args[0])));
throw new InvalidOperationException($"vigil crash test: pid {pid} crashes on purpose");
