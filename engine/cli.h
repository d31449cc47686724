/* Shared command-line helpers for the vigil subcommands. */
#ifndef VG_CLI_H
#define VG_CLI_H

#include <stddef.h>

#define VG_DEFAULT_CONFIG_DIR "/etc/vigil"

struct vg_dirlist {
    const char **v;
    size_t n;
};

/* Appends a --config-dir value; returns 0 or VG_ENOMEM. */
int vg_dirlist_add(struct vg_dirlist *l, const char *dir);
void vg_dirlist_free(struct vg_dirlist *l);

/* Loads config dirs (default /etc/vigil) and compiles the rules, printing every diagnostic to
 * stderr. Returns 0, VG_ECONFIG or VG_ENOMEM. */
struct vg_config;
struct vg_ruleset;
int vg_cli_load(const struct vg_dirlist *dirs, unsigned flags, struct vg_config **cfg,
                struct vg_ruleset **rules);

int vg_cmd_check(int argc, char **argv);
int vg_cmd_status(int argc, char **argv);
int vg_cmd_ps(int argc, char **argv);

#endif
