// Opens an HPROF heap dump with VisualVM's heap library (Debian's visualvm package) and checks it
// is whole: the library must parse it and walk every instance, the record stream must end exactly
// at a record boundary with HEAP DUMP END, and the named class must have at least N instances.
//   java -cp CHECKER:HEAPJAR HprofCheck FILE [CLASS MIN_INSTANCES]
// Exit 0 and one summary line when whole; exit 1 with the reason otherwise.
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.File;
import java.io.FileInputStream;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.util.Iterator;
import org.graalvm.visualvm.lib.jfluid.heap.Heap;
import org.graalvm.visualvm.lib.jfluid.heap.HeapFactory;
import org.graalvm.visualvm.lib.jfluid.heap.Instance;
import org.graalvm.visualvm.lib.jfluid.heap.JavaClass;

public class HprofCheck {
    static final int HEAP_DUMP_END = 0x2C;

    static void fail(String why) {
        System.out.println("HPROF REJECTED: " + why);
        System.exit(1);
    }

    // Walks the top-level records: u1 tag, u4 time, u4 length, body. The library reads a dump
    // lazily and tolerates a cut one, so the framing is checked here.
    static String checkFraming(File f) throws IOException {
        long size = f.length(), off = 0;
        int last = -1;
        long records = 0;
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(new FileInputStream(f), 1 << 16))) {
            StringBuilder magic = new StringBuilder();
            int c;
            while ((c = in.read()) > 0)
                magic.append((char) c);
            if (c < 0 || !magic.toString().startsWith("JAVA PROFILE 1.0."))
                fail("not an HPROF file (header \"" + magic + "\")");
            off = magic.length() + 1;
            int idSize = in.readInt();
            if (idSize != 4 && idSize != 8)
                fail("identifier size " + idSize);
            in.readLong();
            off += 12;
            while (off < size) {
                if (size - off < 9)
                    fail("truncated record header at offset " + off);
                last = in.readUnsignedByte();
                in.readInt();
                long len = in.readInt() & 0xffffffffL;
                off += 9;
                if (len > size - off)
                    fail("record tag 0x" + Integer.toHexString(last) + " at offset " + (off - 9)
                         + " claims " + len + " bytes, " + (size - off) + " left: truncated");
                in.skipNBytes(len);
                off += len;
                records++;
            }
        } catch (EOFException e) {
            fail("unexpected end of file");
        }
        if (last != HEAP_DUMP_END)
            fail("last record is tag 0x" + Integer.toHexString(last) + ", not HEAP DUMP END: truncated");
        return records + " records";
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1 && args.length != 3) {
            System.err.println("usage: HprofCheck FILE [CLASS MIN_INSTANCES]");
            System.exit(2);
        }
        File f = new File(args[0]);
        String framing = checkFraming(f);
        Heap heap;
        try {
            heap = HeapFactory.createHeap(f);
        } catch (Exception e) {
            fail("VisualVM's heap library cannot open it: " + e);
            return;
        }
        long n = 0;
        for (Iterator<Instance> it = heap.getAllInstancesIterator(); it.hasNext(); it.next())
            n++;
        long live = heap.getSummary().getTotalLiveInstances();
        if (n == 0 || n != live)
            fail("walked " + n + " instances, the summary says " + live);
        String detail = "";
        if (args.length == 3) {
            JavaClass cls = heap.getJavaClassByName(args[1]);
            if (cls == null)
                fail("no class " + args[1]);
            int min = Integer.parseInt(args[2]);
            if (cls.getInstancesCount() < min)
                fail(args[1] + " has " + cls.getInstancesCount() + " instances, expected at least " + min);
            detail = ", " + args[1] + " x" + cls.getInstancesCount();
        }
        System.out.println("HPROF OK: " + framing + ", " + n + " instances, " + heap.getAllClasses().size()
                           + " classes" + detail);
    }
}
