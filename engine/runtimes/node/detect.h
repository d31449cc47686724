/* Recognising a Node.js process and reading the options that matter to vigil from its command
 * line and NODE_OPTIONS. */
#ifndef VG_NODE_DETECT_H
#define VG_NODE_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VG_NODE_HOST_MAX 64
#define VG_NODE_PATH_MAX 4096

struct vg_node_options {
    bool inspect;                        /* --inspect, --inspect-brk, --inspect-wait given */
    char inspect_host[VG_NODE_HOST_MAX]; /* "127.0.0.1" unless given */
    int inspect_port;        /* 9229 unless given (--inspect=[host:]port, --inspect-port) */
    int heapsnapshot_signal; /* --heapsnapshot-signal=SIG; 0: none */
    int report_signal;       /* SIGUSR2 or --report-signal when --report-on-signal; 0: none */
    char diagnostic_dir[VG_NODE_PATH_MAX]; /* --diagnostic-dir; "" = the process's cwd */
    char report_dir[VG_NODE_PATH_MAX];     /* --report-dir / --report-directory */
};

/* Parses node's own options: those in NODE_OPTIONS (environ_opts, may be NULL) first, then
 * argv up to the script name (later values win, as in node). argv is argc NUL-terminated
 * strings. Unknown options are skipped. */
void vg_node_parse_options(const char *environ_opts, const char *const *argv, size_t argc,
                           struct vg_node_options *out);

/* Parses "SIGUSR2", "USR2" or a number; 0 when unknown. */
int vg_node_signal_number(const char *name);

/* Reads a NUL-separated buffer (cmdline) into an argv array of at most max entries, pointing
 * into buf (which must end with a NUL). Returns the count. */
size_t vg_node_split_nul(char *buf, size_t len, const char **argv, size_t max);

/* Does the base name of path look like node's executable ("node", "nodejs", "node20",
 * "node-20.11")? The cheap first test of vg_node_detect. */
bool vg_node_name_like(const char *path);

/* Is process pid (under proc_root) a Node.js process? The name of its executable (or argv[0],
 * which node keeps unless process.title changes it) must look like node, and the executable
 * must export node_module_register, the symbol every node binary exports for native addons
 * (so a script or another program named "node" is not taken for one). Returns 1 (with *opts
 * filled when opts is not NULL), 0 (not node) or VG_E* (the process is gone, no permission). */
int vg_node_detect(const char *proc_root, int pid, struct vg_node_options *opts);

/* Looks up a defined dynamic symbol through the ELF's GNU hash table, reading through rd.
 * Returns 1 found, 0 not found, VG_EPARSE on a malformed file. Bounded whatever the file
 * holds. */
typedef int (*vg_node_read_fn)(void *ctx, void *buf, size_t len, uint64_t off);
int vg_node_elf_has_symbol(vg_node_read_fn rd, void *ctx, const char *name);

#endif
