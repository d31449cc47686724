/* HotSpot's attach protocol (the one jcmd speaks), and the diagnostics vigil asks for through it:
 * heap dumps (GC.heap_dump, HPROF), thread dumps (Thread.print) and JFR recordings.
 *
 * The listener is a UNIX socket `.java_pid<nspid>` in the JVM's temp dir (/tmp in its mount
 * namespace, reached through /proc/PID/root). A JVM starts it lazily: the client creates
 * `.attach_pid<nspid>` in the JVM's cwd (or temp dir) and sends SIGQUIT, which the JVM's handler
 * turns into "start the listener". vigil sends SIGQUIT only to a JVM whose caught-signal mask
 * holds it: a JVM started with -Xrs does not catch it and SIGQUIT would terminate it. The
 * listener accepts a peer whose effective uid and gid equal the JVM's, or root in its user
 * namespace; vigil running as root connects from a short-lived child that takes the JVM's ids
 * and hands the connected socket back. A request is "1\0<command>\0<arg0>\0<arg1>\0<arg2>\0";
 * the reply is a decimal status and '\n', then the output until EOF. The listener is single
 * threaded: every step has a deadline and the connection is closed on any error, so a stuck
 * client never holds it.
 *
 * Files (heap dumps, recordings) are written by the JVM in its own filesystem view: vigil makes a
 * fresh directory, owned by the JVM's user, under a directory both sides see (by default the
 * JVM's /tmp), passes the JVM its absolute path in the JVM's view, streams the file to the sink
 * through /proc/PID/root once the JVM reports it written, and removes it.
 *
 * Every function blocks (run them on a worker thread), never calls libuv, and checks `cancel`
 * between steps and at least every 100 ms while waiting. */
#ifndef VG_JVM_ATTACH_H
#define VG_JVM_ATTACH_H

#include "engine/runtimes/jvm/target.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Receives output in order; returns 0 or a VG_E* code (e.g. VG_EQUOTA, VG_ECANCELED), which
 * aborts the operation and is returned by it. Called only from the calling thread. */
typedef int (*vg_jvm_sink_fn)(void *ctx, const void *buf, size_t len);

/* HotSpot's limits (attachListener.hpp): longer requests are dropped by the listener. */
#define VG_JVM_ATTACH_NAME_MAX 16
#define VG_JVM_ATTACH_ARG_MAX 1024

struct vg_jvm_attach_opts {
    uint32_t attach_timeout_ms;  /* listener to appear after SIGQUIT; 0: 10 s */
    uint32_t io_timeout_ms;      /* connect and send the request; 0: 5 s */
    uint32_t command_timeout_ms; /* the command's reply, to its end; 0: 10 min */
    const atomic_bool *cancel;   /* may be NULL */
    const atomic_bool *stop;     /* ends a JFR recording's wait early, as its end; may be NULL */
};

/* The reply parser, incremental (the protocol's one piece of untrusted wire format). */
struct vg_jvm_reply {
    vg_jvm_sink_fn sink; /* output after the status line; may be NULL */
    void *ctx;
    char *head; /* optional: receives the first head_cap-1 output bytes, NUL-terminated */
    size_t head_cap;
    /* Results. */
    bool have_status;
    int status;     /* the command's completion status (0 = success) */
    uint64_t bytes; /* output bytes after the status line */
    /* Internal. */
    char line[16];
    size_t line_len;
    size_t head_len;
};

/* Initializes (zeroes) the parser. */
void vg_jvm_reply_init(struct vg_jvm_reply *r, vg_jvm_sink_fn sink, void *ctx, char *head,
                       size_t head_cap);
/* Feeds received bytes. Returns 0, VG_EPROTO (the status line is not "[-]digits\n" within 12
 * bytes), or the sink's error. */
int vg_jvm_reply_feed(struct vg_jvm_reply *r, const void *buf, size_t len);
/* At EOF: 0, or VG_EPROTO when no complete status line came. */
int vg_jvm_reply_end(struct vg_jvm_reply *r);

/* Sends one attach command (e.g. "jcmd" with arg0 "Thread.print") and streams its output.
 * Starts the listener if needed (see above). On return, *status (optional) is the JVM's status;
 * a non-zero status is also an error (VG_EFATAL) whose message is the JVM's output. head (may be
 * NULL) gets the output's first bytes as vg_jvm_reply does. Errors: VG_EUNSUPPORTED (no listener
 * and SIGQUIT not caught), VG_ETIMEDOUT (a step exceeded its deadline: the JVM is reported as not
 * answering), VG_EPERM (not root and not the JVM's user), VG_ESRCH/VG_EEXITED (the JVM is gone),
 * VG_EPROTO, VG_ECANCELED, VG_EINVAL (command or argument too long), the sink's error. err gets a
 * message naming the pid. */
int vg_jvm_attach_command(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                          const char *cmd, const char *const args[3], vg_jvm_sink_fn sink,
                          void *ctx, char *head, size_t head_cap, int *status, char *err,
                          size_t errlen);

/* `jcmd PID <line>`: a diagnostic command line such as "Thread.print -l". */
int vg_jvm_jcmd(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o, const char *line,
                vg_jvm_sink_fn sink, void *ctx, char *head, size_t head_cap, char *err,
                size_t errlen);

/* Thread.print (with -l: locked ownable synchronizers) into the sink. */
int vg_jvm_thread_print(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                        bool locks, vg_jvm_sink_fn sink, void *ctx, char *err, size_t errlen);

struct vg_jvm_file_result {
    uint64_t bytes; /* handed to the sink */
};

/* GC.heap_dump into a fresh directory under `dir` (an absolute path in the JVM's view; NULL:
 * "/tmp"), then the HPROF file into the sink; the file and directory are removed in all cases.
 * all=false dumps live objects only (after a full GC), as GC.heap_dump does by default. */
int vg_jvm_heap_dump(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                     const char *dir, bool all, vg_jvm_sink_fn sink, void *ctx,
                     struct vg_jvm_file_result *res, char *err, size_t errlen);

/* A JFR recording: JFR.start with `settings` ("default", "profile", or a .jfc path in the JVM's
 * view; NULL: "default"), a wait of duration_ms (0: until o->stop; cancellable; o->stop ends it
 * early, keeping the recording), then JFR.stop writing the file
 * under a fresh directory in `dir`, streamed into the sink and removed. A cancelled or failed
 * recording is stopped without a file. */
int vg_jvm_jfr_record(const struct vg_jvm_target *t, const struct vg_jvm_attach_opts *o,
                      const char *settings, uint64_t duration_ms, const char *dir,
                      vg_jvm_sink_fn sink, void *ctx, struct vg_jvm_file_result *res, char *err,
                      size_t errlen);

#endif
