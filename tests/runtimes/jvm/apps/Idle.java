// An idle JVM for attach and perf-data tests: prints "ready" once started, then waits. Three named
// threads wait on a monitor so a thread dump has something recognisable; with "--gc-every MS" the
// main thread calls System.gc() every MS milliseconds (a full-GC count that keeps rising).
public class Idle {
    static final Object LOCK = new Object();
    static final String MARKER = "vigil-idle-marker";

    public static void main(String[] args) throws Exception {
        long gcEvery = 0;
        for (int i = 0; i + 1 < args.length; i++)
            if (args[i].equals("--gc-every"))
                gcEvery = Long.parseLong(args[i + 1]);
        for (int i = 0; i < 3; i++) {
            Thread t = new Thread(() -> {
                synchronized (LOCK) {
                    try {
                        LOCK.wait();
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            }, "vigil-idle-worker-" + i);
            t.setDaemon(true);
            t.start();
        }
        System.out.println("ready " + ProcessHandle.current().pid() + " " + MARKER);
        System.out.flush();
        for (;;) {
            if (gcEvery > 0) {
                Thread.sleep(gcEvery);
                System.gc();
            } else {
                Thread.sleep(60_000);
            }
        }
    }
}
