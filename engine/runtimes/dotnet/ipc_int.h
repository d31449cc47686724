/* Inside the .NET IPC module: the connection abstraction the commands run over (a socket, or a
 * buffer for the fuzzer: same parse path), message framing and the UTF-16 helpers. */
#ifndef VG_DOTNET_IPC_INT_H
#define VG_DOTNET_IPC_INT_H

#include "engine/runtimes/dotnet/ipc.h"

#define VG__DNIPC_HEADER_SIZE 20
#define VG__DNIPC_MAX_MESSAGE 65535
#define VG__DNIPC_MAX_PAYLOAD (VG__DNIPC_MAX_MESSAGE - VG__DNIPC_HEADER_SIZE)

enum {
    VG__DNIPC_SET_DUMP = 0x01,
    VG__DNIPC_SET_EVENTPIPE = 0x02,
    VG__DNIPC_SET_PROCESS = 0x04,
    VG__DNIPC_SET_SERVER = 0xFF,
};
enum { VG__DNIPC_SERVER_OK = 0x00, VG__DNIPC_SERVER_ERROR = 0xFF };

/* HRESULTs of the diagnostics server (ds-protocol.h). */
#define VG__DNIPC_E_BAD_ENCODING 0x80131384u
#define VG__DNIPC_E_UNKNOWN_COMMAND 0x80131385u
#define VG__DNIPC_E_UNKNOWN_MAGIC 0x80131386u
#define VG__DNIPC_E_NOTSUPPORTED 0x80131515u
#define VG__DNIPC_E_FAIL 0x80004005u
#define VG__DNIPC_E_NOT_YET_AVAILABLE 0x8013135bu
#define VG__DNIPC_E_RUNTIME_UNINITIALIZED 0x80131371u
#define VG__DNIPC_E_INVALIDARG 0x80070057u
#define VG__DNIPC_E_INSUFFICIENT_BUFFER 0x8007007au
#define VG__DNIPC_E_ENVVAR_NOT_FOUND 0x800000cbu

/* A byte stream a command runs over. read sets *got = 0 at end of stream. */
struct vg__dnipc_conn {
    int (*read)(struct vg__dnipc_conn *c, void *buf, size_t cap, size_t *got);
    int (*write)(struct vg__dnipc_conn *c, const void *buf, size_t len);
    const struct vg_dnipc_io *io;
    int fd;
    const uint8_t *mem; /* the memory transport */
    size_t mem_len, mem_off;
};
void vg__dnipc_conn_fd(struct vg__dnipc_conn *c, int fd, const struct vg_dnipc_io *io);
/* Reads come from buf; writes are discarded. */
void vg__dnipc_conn_mem(struct vg__dnipc_conn *c, const void *buf, size_t len,
                        const struct vg_dnipc_io *io);

/* A reply: header fields and its payload (held in the struct: at most 65515 bytes). */
struct vg__dnipc_reply {
    uint8_t set, id;
    uint16_t size;
    size_t payload_len;
    uint8_t payload[VG__DNIPC_MAX_PAYLOAD];
};

/* Reads one message (header then payload). VG_EPROTO on a bad magic or size, VG_ECONNRESET when
 * the stream ends early, VG_ETIMEDOUT / VG_ECANCELED. */
int vg__dnipc_recv(struct vg__dnipc_conn *c, struct vg__dnipc_reply *r);
/* 0 for Server/OK; otherwise the VG_E* for the error (VG_EUNSUPPORTED for UNKNOWN_COMMAND, so
 * callers fall back) with a message naming `op` in io->err. `with_message`: the error payload
 * may carry a UTF-16 message after the HRESULT (GenerateCoreDump3). */
int vg__dnipc_check(const struct vg__dnipc_reply *r, const struct vg_dnipc_io *io, const char *op,
                    const char *what, bool with_message);

/* Payload readers: each returns 0 or VG_EPROTO when the payload is too short. */
struct vg__dnipc_rd {
    const uint8_t *p;
    size_t n, off;
};
int vg__dnipc_rd_u32(struct vg__dnipc_rd *r, uint32_t *v);
int vg__dnipc_rd_u64(struct vg__dnipc_rd *r, uint64_t *v);
/* A protocol string (u32 length in UTF-16 units including the NUL, then the units) as UTF-8
 * (malloc'ed; "" for length 0). Units after an embedded NUL are dropped; lone surrogates become
 * U+FFFD. `max_units` bounds the length (VG_E2BIG beyond). */
int vg__dnipc_rd_string(struct vg__dnipc_rd *r, uint32_t max_units, char **out);

/* ProcessInfo payloads (command 1, 2 or 3). */
int vg__dnipc_parse_process_info(unsigned command, const uint8_t *p, size_t n,
                                 struct vg_dnipc_process_info *out);
/* The ProcessEnvironment reply's continuation, read from c after the reply `r`. */
int vg__dnipc_read_environment(struct vg__dnipc_conn *c, const struct vg__dnipc_reply *r,
                               vg_dnipc_env_cb cb, void *ctx);

/* UTF-16LE -> UTF-8 of n units (stops at a NUL). malloc'ed. */
char *vg__dnipc_utf16_to_utf8(const uint8_t *units, size_t n);

/* Sets io->err (if any). */
void vg__dnipc_seterr(const struct vg_dnipc_io *io, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Waits for fd to be ready for `events` (POLLIN/POLLOUT) honouring io's timeout and cancel. */
int vg__dnipc_wait(int fd, short events, const struct vg_dnipc_io *io);

#endif
