// A JVM whose heap grows: every STEP_MS it adds a Chunk holding CHUNK_KB of bytes to a list it
// keeps, until MAX_MB are held; then it holds them. Prints "ready" at start and "held N" after
// each step, so tests know how many Chunk instances a heap dump must contain at least.
//   java HeapGrower [CHUNK_KB=1024] [STEP_MS=100] [MAX_MB=64]
import java.util.ArrayList;
import java.util.List;

public class HeapGrower {
    static final class Chunk {
        final byte[] data;
        final int index;

        Chunk(int kb, int index) {
            this.data = new byte[kb * 1024];
            this.index = index;
            for (int i = 0; i < data.length; i += 4096)
                data[i] = (byte) index;
        }
    }

    static final List<Chunk> HELD = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        int chunkKb = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
        long stepMs = args.length > 1 ? Long.parseLong(args[1]) : 100;
        long maxMb = args.length > 2 ? Long.parseLong(args[2]) : 64;
        System.out.println("ready " + ProcessHandle.current().pid());
        System.out.flush();
        for (;;) {
            if ((long) HELD.size() * chunkKb < maxMb * 1024) {
                HELD.add(new Chunk(chunkKb, HELD.size()));
                System.out.println("held " + HELD.size());
                System.out.flush();
            }
            Thread.sleep(stepMs);
        }
    }
}
