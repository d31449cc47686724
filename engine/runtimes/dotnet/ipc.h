/* The .NET diagnostic IPC protocol (DOTNET_IPC_V1) over Unix domain sockets.
 *
 * Two ways to reach a runtime:
 *  - connect mode: the runtime listens on $TMPDIR/dotnet-diagnostic-{pid}-{key}-socket and vigil
 *    connects, one connection per command (vg_dnipc_find_socket, vg_dnipc_endpoint_path);
 *  - listen mode: vigil listens on a socket named by DOTNET_DiagnosticPorts, every runtime
 *    connects and sends a 34-byte advertise, then waits for one command; after each command it
 *    connects again (struct vg_dnipc_server, vg_dnipc_server_endpoint).
 *
 * Everything here is loop-agnostic: plain blocking calls with an explicit timeout and an optional
 * cancel flag, safe to call from any thread (a struct vg_dnipc_server is internally locked). No
 * length read from the wire is trusted: a message is at most 65535 bytes by its u16 size, strings
 * are checked against the payload, continuations are read in bounded pieces.
 *
 * Protocol reference: dotnet/diagnostics documentation/design-docs/ipc-protocol.md. */
#ifndef VG_DOTNET_IPC_H
#define VG_DOTNET_IPC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- per-call I/O context ---------------------------------------------------------------- */

/* How long a call may wait and how it is told to stop. `timeout_ms` bounds every single wait
 * (connect, each read or write making no progress, waiting for a listen-mode runtime to come
 * back); < 0 waits without limit (a trace stream with no events sends nothing for a while).
 * `cancel`, when set, is checked at least every 100 ms while waiting; a call that sees it true
 * returns VG_ECANCELED. `err`, when set, receives a human message on failure, naming the target
 * (`what`, e.g. "pid 4242" or a socket path, set by the endpoint) and what to do. */
struct vg_dnipc_io {
    int timeout_ms;
    const atomic_bool *cancel;
    char *err;
    size_t errlen;
};

/* ---- endpoints: where one command's connection comes from ---------------------------------- */

struct vg_dnipc_endpoint;
/* Returns a connected socket (blocking mode off is not assumed; the caller owns it) or VG_E*. */
typedef int (*vg_dnipc_connect_fn)(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                                   int *out_fd);

struct vg_dnipc_endpoint {
    vg_dnipc_connect_fn connect;
    void *ctx;
    char path[4096]; /* connect mode: the runtime's socket */
    uint8_t cookie[16];
    char what[64]; /* for messages: "pid 4242" */
};

/* Connect mode: the runtime's own listening socket at `path`. `what` names the target in
 * messages (NULL: the path). */
void vg_dnipc_endpoint_path(struct vg_dnipc_endpoint *ep, const char *path, const char *what);

/* Finds the connect-mode socket of host pid `pid` as seen from here: TMPDIR from
 * /proc/PID/environ (default /tmp), the socket reached through /proc/PID/root (so a process in
 * another mount namespace is found in its own /tmp), named with its innermost NSpid and its start
 * time (field 22 of /proc/PID/stat, adjusted by its time namespace's boottime offset). Matching
 * the start time too means a socket left behind by an earlier process that had the same pid (the
 * runtime does not remove it on SIGKILL) is never taken for this one. `proc_root` is normally
 * "/proc". Errors: VG_ESRCH (no such process), VG_ENOENT (no socket: not a .NET process, started
 * with DOTNET_EnableDiagnostics=0, or not yet initialised), VG_EACCES. */
int vg_dnipc_find_socket(const char *proc_root, pid_t pid, char *path, size_t n,
                         const struct vg_dnipc_io *io);

/* The runtime's temporary directory as it sees it: TMPDIR from /proc/PID/environ, else "/tmp"
 * (no trailing slash). */
void vg_dnipc_tmpdir(const char *proc_root, pid_t pid, char *out, size_t n);

/* ---- commands ------------------------------------------------------------------------------ */

struct vg_dnipc_process_info {
    unsigned command; /* 3, 2 or 1: the ProcessInfo command that answered */
    uint64_t pid;     /* in the runtime's own pid namespace */
    uint8_t cookie[16];
    char *command_line;
    char *os;
    char *arch;
    char *entry_assembly; /* "" before ProcessInfo2 or while the runtime is suspended */
    char *clr_version;    /* "" before ProcessInfo2 */
    char *rid;            /* portable runtime identifier, "" before ProcessInfo3 */
};
void vg_dnipc_process_info_free(struct vg_dnipc_process_info *pi);

/* ProcessInfo3, falling back to ProcessInfo2 then ProcessInfo on UNKNOWN_COMMAND. */
int vg_dnipc_process_info(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                          struct vg_dnipc_process_info *out);

/* Lets a runtime started with a `suspend` diagnostic port go on (a no-op for a running one). */
int vg_dnipc_resume_runtime(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io);

/* The runtime's dump types (not vigil's enum: Normal is dotnet-monitor's "Mini"). */
enum vg_dnipc_dump_type {
    VG_DNIPC_DUMP_NORMAL = 1,
    VG_DNIPC_DUMP_WITH_HEAP = 2,
    VG_DNIPC_DUMP_TRIAGE = 3,
    VG_DNIPC_DUMP_FULL = 4,
};
/* dotnet-monitor's names: "Mini" (Normal), "WithHeap", "Triage", "Full", case-insensitive. */
int vg_dnipc_dump_type_parse(const char *s, enum vg_dnipc_dump_type *out);
const char *vg_dnipc_dump_type_name(enum vg_dnipc_dump_type t);

/* Asks the runtime to write a dump of itself to `path` (a path in the runtime's own mount
 * namespace; it must not exist). GenerateCoreDump3 (its error message is passed on), falling
 * back to 2 then 1. Blocks until the runtime's createdump finishes: give a timeout of minutes. */
int vg_dnipc_dump(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                  const char *path, enum vg_dnipc_dump_type type);

/* Each variable of the runtime's environment (ProcessEnvironment). The callback returns 0 to go
 * on, or a VG_E* code to stop (returned). At most VG_DNIPC_ENV_MAX bytes are accepted, each entry
 * at most VG_DNIPC_ENV_ENTRY_MAX. */
#define VG_DNIPC_ENV_MAX (64u << 20)
#define VG_DNIPC_ENV_ENTRY_MAX (1u << 20)
typedef int (*vg_dnipc_env_cb)(void *ctx, const char *name, const char *value);
int vg_dnipc_environment(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                         vg_dnipc_env_cb cb, void *ctx);
/* One variable: *value is malloc'ed, or VG_ENOTFOUND when it is not set. */
int vg_dnipc_get_env(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                     const char *name, char **value);
/* SetEnvironmentVariable (.NET 6+). */
int vg_dnipc_set_env(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                     const char *name, const char *value);

/* ---- EventPipe sessions (the nettrace stream itself is parsed elsewhere) -------------------- */

struct vg_dnipc_provider {
    const char *name;
    uint64_t keywords;
    uint32_t level;        /* 0 LogAlways .. 5 Verbose */
    const char *arguments; /* "Key=Value;Key2=Value2", or NULL */
};

struct vg_dnipc_trace_config {
    uint32_t buffer_mb; /* circular buffer; 0 means 256 */
    bool request_rundown;
    uint64_t rundown_keyword; /* 0: the default (0x80020139) when request_rundown */
    bool no_stackwalk;        /* true: events carry no stacks (CollectTracing3+) */
    const struct vg_dnipc_provider *providers;
    size_t n_providers;
};

/* Starts a session streaming nettrace (format 1) on its own connection. The oldest command that
 * expresses the config is used (CollectTracing2; 3 without stacks; 4 with a custom rundown
 * keyword), as dotnet's own client does. On success *session_id is the runtime's id and *fd the
 * connection to read the nettrace stream from (the caller owns and closes it; read it with
 * vg_dnipc_read or vg_dnipc_pump). Stop the session with vg_dnipc_stop_tracing on a new
 * connection; the runtime then writes the rundown and closes *fd. */
int vg_dnipc_collect_tracing(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                             const struct vg_dnipc_trace_config *cfg, uint64_t *session_id,
                             int *fd);
int vg_dnipc_stop_tracing(const struct vg_dnipc_endpoint *ep, const struct vg_dnipc_io *io,
                          uint64_t session_id);

/* Reads up to `cap` bytes from a session's fd: *got = 0 means the runtime closed the stream. */
int vg_dnipc_read(int fd, const struct vg_dnipc_io *io, void *buf, size_t cap, size_t *got);
/* Copies the stream into a sink until the runtime closes it (or the sink or cancel stops it). */
typedef int (*vg_dnipc_sink_fn)(void *ctx, const void *buf, size_t len);
int vg_dnipc_pump(int fd, const struct vg_dnipc_io *io, vg_dnipc_sink_fn write, void *ctx,
                  uint64_t *bytes);

/* ---- listen mode ----------------------------------------------------------------------------- */

/* What a runtime says when it connects to our socket. */
struct vg_dnipc_advert {
    uint8_t cookie[16];
    uint64_t pid; /* in the runtime's pid namespace */
};
#define VG_DNIPC_ADVERT_SIZE 34
/* Returns 0 or VG_EPROTO (bad magic or size). */
int vg_dnipc_parse_advert(const void *buf, size_t len, struct vg_dnipc_advert *out);

struct vg_dnipc_server_opts {
    bool delete_existing;  /* DeleteEndpointOnStartup: remove whatever is at the path first */
    int max_connections;   /* runtimes tracked at once (0: no limit); also the listen backlog */
    int advert_timeout_ms; /* a connection must advertise within this (0: 1000) */
};

struct vg_dnipc_runtime {
    uint8_t cookie[16];
    uint64_t pid;   /* advertised (runtime's namespace) */
    pid_t host_pid; /* SO_PEERCRED: the runtime's pid as seen here, 0 when not visible */
    uid_t uid;
    uint64_t first_ms; /* vg_mono_ms of its first advertise */
    bool parked;       /* a connection is waiting for a command */
};

/* Events of vg_dnipc_server_serve, called on its thread. A new runtime is reported once (its
 * first advertise); a runtime is gone when its parked connection hangs up and it does not come
 * back within the advert timeout, or when it could not be kept (MaxConnections). */
struct vg_dnipc_server_cbs {
    void (*added)(void *ctx, const struct vg_dnipc_runtime *rt);
    void (*removed)(void *ctx, const struct vg_dnipc_runtime *rt);
    void *ctx;
};

struct vg_dnipc_server;

/* Binds and listens on `path` (parent directories created 0755). The socket file is made mode
 * 0666 after bind, whatever the umask: the runtime connects as the app's user, often not ours,
 * and a socket it cannot write to would leave a `suspend` runtime waiting forever. Access is
 * governed by the directory holding the socket. An existing live socket (another vigil or
 * dotnet-monitor listening) is never removed: VG_EBUSY. A stale one (nobody listening) is
 * replaced; any other file there is VG_EEXIST unless delete_existing. */
int vg_dnipc_server_open(const char *path, const struct vg_dnipc_server_opts *opts,
                         struct vg_dnipc_server **out, char *err, size_t errlen);
/* Closes every connection and removes the socket file. NULL is a no-op. Call after serve returned.
 */
void vg_dnipc_server_destroy(struct vg_dnipc_server *s);
const char *vg_dnipc_server_path(const struct vg_dnipc_server *s);

/* Accepts runtimes, reads their advertise, parks their connection by cookie and watches parked
 * connections for hang-ups, until *cancel is true (checked every 100 ms). Returns 0 then. */
int vg_dnipc_server_serve(struct vg_dnipc_server *s, const struct vg_dnipc_server_cbs *cbs,
                          const atomic_bool *cancel);

/* Copies the known runtimes into out (up to n); returns how many there are. */
size_t vg_dnipc_server_list(struct vg_dnipc_server *s, struct vg_dnipc_runtime *out, size_t n);
/* Looks one runtime up by cookie. Returns 0 or VG_ENOTFOUND. */
int vg_dnipc_server_get(struct vg_dnipc_server *s, const uint8_t cookie[16],
                        struct vg_dnipc_runtime *out);
/* Forgets a runtime (closes its parked connection). */
void vg_dnipc_server_forget(struct vg_dnipc_server *s, const uint8_t cookie[16]);

/* An endpoint whose connect takes the runtime's parked connection, waiting up to io->timeout_ms
 * for it to reconnect after a previous command. */
void vg_dnipc_server_endpoint(struct vg_dnipc_endpoint *ep, struct vg_dnipc_server *s,
                              const uint8_t cookie[16], const char *what);

/* ---- helpers -----------------------------------------------------------------------------------
 */

/* .NET's Guid.ToString(): "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (first three fields LE). */
void vg_dnipc_cookie_format(const uint8_t cookie[16], char out[37]);
int vg_dnipc_cookie_parse(const char *s, uint8_t cookie[16]);

/* A human text for an HRESULT the runtime returned ("unknown command: the runtime is too old for
 * this request", ...); NULL when unknown. */
const char *vg_dnipc_hresult_text(uint32_t hr);

#endif
