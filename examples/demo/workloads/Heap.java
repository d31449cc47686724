// Demo workload for the JVM: keeps 4 MB more of live objects every second, up to 120 MB, then
// holds them. Run by scripts/demo.sh as a single source file (`java Heap.java`, no build step);
// vigil reads its heap from the JVM's perf-data file and takes an HPROF heap dump through the
// attach protocol when the DemoJvmHeap rule fires.
import java.util.ArrayList;
import java.util.List;

public class Heap {
    public static void main(String[] args) throws InterruptedException {
        List<long[]> keep = new ArrayList<>();
        System.out.println("ready " + ProcessHandle.current().pid());
        while (true) {
            if (keep.size() < 30)
                keep.add(new long[512 * 1024]); // 4 MB
            Thread.sleep(1000);
        }
    }
}
