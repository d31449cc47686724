/* Running a short job inside another process's network namespace.
 *
 * A Node inspector listens on loopback in the target's network namespace, which in a DaemonSet
 * (hostPID) is not vigil's. setns(CLONE_NEWNET) changes only the calling thread, and a socket
 * keeps the namespace it was created in: so a dedicated thread enters the namespace, creates and
 * connects the socket, and exits; the caller keeps using the socket from its own namespace (its
 * sink may write to egress over the network). No thread of the caller ever changes namespace. */
#ifndef VG_NODE_NETNS_H
#define VG_NODE_NETNS_H

#include <stdbool.h>

/* Called on the dedicated thread, inside the namespace; returns 0 or VG_E*. */
typedef int (*vg_node_netns_fn)(void *arg);

/* Whether /proc/PID/ns/net differs from the caller's namespace. Returns 0 (with *other set) or
 * VG_E* (ENOENT/ESRCH: the process is gone; EACCES: no permission to see its namespace). */
int vg_node_netns_differs(const char *proc_root, int pid, bool *other);

/* Runs fn(arg) in a new thread that first joins the network namespace of pid (through
 * proc_root/PID/ns/net), and waits for it. When the namespace is the caller's own, fn runs
 * directly on the calling thread. Returns fn's result or VG_E* when the namespace cannot be
 * entered (VG_EPERM without CAP_SYS_ADMIN). */
int vg_node_in_netns(const char *proc_root, int pid, vg_node_netns_fn fn, void *arg);

#endif
