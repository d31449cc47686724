// The JVM the dump test takes a core of (tests/dump/runtimes.sh): 24 sleeping workers plus the
// JVM's own threads, and a tick every 100 ms to show it runs on after the dump.
public class Sleepers {
    public static void main(String[] args) throws Exception {
        for (int i = 0; i < 24; i++) {
            Thread t = new Thread(() -> {
                while (true) {
                    try { Thread.sleep(50); } catch (InterruptedException e) { return; }
                }
            }, "sleeper-" + i);
            t.setDaemon(true);
            t.start();
        }
        for (long n = 0;; n++) {
            System.out.println("tick " + n);
            Thread.sleep(100);
        }
    }
}
