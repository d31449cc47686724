/* Reaching a Node process's inspector: one it already opened (--inspect, inspector.open(),
 * an earlier SIGUSR1), found from its options and its listening sockets; or one vigil opens with
 * SIGUSR1 when the configuration allows it, and closes again afterwards. */
#ifndef VG_NODE_INSPECTOR_H
#define VG_NODE_INSPECTOR_H

#include "engine/runtimes/node/cdp.h"
#include "engine/runtimes/node/detect.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A listening TCP socket in the target's network namespace. */
struct vg_node_listener {
    char host[64]; /* numeric, as the kernel shows it ("0.0.0.0", "127.0.0.1", "::", "::1") */
    int port;
    uint64_t inode;
    bool owned; /* one of the target's descriptors */
};

/* Lists the LISTEN sockets of proc_root/PID/net/tcp and tcp6 (the target's namespace) and marks
 * those whose inode is among proc_root/PID/fd. Returns the count (at most max) or VG_E*. */
int vg_node_listeners(const char *proc_root, int pid, struct vg_node_listener *out, size_t max);

/* Parses one /proc/net/tcp{,6} table (NUL-terminated text); keeps LISTEN rows. Returns the count
 * (at most max). */
size_t vg_node_parse_net_tcp(const char *text, bool v6, struct vg_node_listener *out, size_t max);

struct vg_node_endpoint {
    struct vg_cdp_addr addr; /* where to connect, in the target's namespace */
    char path[160];          /* the WebSocket path from /json/list */
    bool opened_by_vigil;    /* SIGUSR1 opened it: close it after the collection */
};

/* Finds an inspector the target already has open: the port from its options if it listens
 * there, then its other listening sockets (each asked GET /json/list once). Returns 0,
 * VG_ENOTFOUND (none open) or VG_E*; err says why. */
int vg_node_inspector_find(const char *proc_root, int pid, const struct vg_node_options *o,
                           const struct vg_cdp_opts *copts, struct vg_node_endpoint *ep, char *err,
                           size_t err_len);

/* Opens the inspector with SIGUSR1 and waits (up to timeout_ms) for it to listen. Refuses,
 * without sending anything, when the target does not catch SIGUSR1 (the signal would kill it) or
 * when the inspector's port is already taken in its namespace by another socket (node would
 * fail to listen and say so only on the target's stderr). Returns 0 (ep->opened_by_vigil set),
 * VG_EBUSY (port taken), VG_EPERM (SIGUSR1 not caught), VG_ETIMEDOUT (no inspector appeared)
 * or VG_E*; err says why. */
int vg_node_inspector_activate(const char *proc_root, int pid, const struct vg_node_options *o,
                               const struct vg_cdp_opts *copts, uint32_t timeout_ms,
                               struct vg_node_endpoint *ep, char *err, size_t err_len);

/* Closes an inspector vigil opened: process._debugEnd() through the session s (which the call
 * ends and frees), then waits (up to timeout_ms) until the port no longer listens. Returns 0 or
 * VG_E*. */
int vg_node_inspector_deactivate(const char *proc_root, int pid, struct vg_cdp *s,
                                 const struct vg_node_endpoint *ep, uint32_t timeout_ms, char *err,
                                 size_t err_len);

/* Whether pid catches signal sig (SigCgt in proc_root/PID/status). Returns 1, 0 or VG_E*. */
int vg_node_catches_signal(const char *proc_root, int pid, int sig);
/* The same, but node installs its handlers while it starts: a process seen (and a rule fired)
 * right after its exec may not catch sig yet, so while it is young (10 s) this waits for it, up
 * to timeout_ms. */
int vg_node_catches_signal_wait(const char *proc_root, int pid, int sig, uint32_t timeout_ms);

#endif
