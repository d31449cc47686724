/* The vigil daemon: one libuv loop that discovers processes, samples them, evaluates every rule
 * against every matching process, runs actions within the limits (persisted in SQLite), reloads
 * its configuration live and serves the HTTP API. */
#ifndef VG_DAEMON_H
#define VG_DAEMON_H

#include "engine/host/proc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vg_daemon_options {
    const char *const *config_dirs; /* default /etc/vigil */
    size_t n_config_dirs;
    const char *state_dir;   /* overrides Storage.StateDir */
    const char *const *urls; /* overrides Server.Urls */
    size_t n_urls;
    bool no_auth;                 /* explicit: API without authentication */
    uint64_t shutdown_timeout_ms; /* bounded wait for running actions on SIGTERM */
    struct vg_procfs procfs;      /* injectable roots (tests); NULL members = real ones */
};

/* Runs until SIGTERM/SIGINT. Returns the process exit status (0 on a clean stop, 1 when the
 * configuration or state cannot be loaded at startup). */
int vg_daemon_run(const struct vg_daemon_options *opts);

#endif
