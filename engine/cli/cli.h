/* The vigil command line: main.c dispatches to one file per command (cli/NAME.c); the helpers
 * here are shared by several commands. Every vg_cmd_* takes argv[0] = the command name and
 * returns the process exit code: 0 ok, 1 failure (message on stderr), 2 usage. */
#ifndef VG_CLI_H
#define VG_CLI_H

#include <stddef.h>

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

int vg_cmd_run(int argc, char **argv);    /* run.c: the daemon */
int vg_cmd_check(int argc, char **argv);  /* check.c */
int vg_cmd_dump(int argc, char **argv);   /* dump.c: `vigil dump PID [--type T] [-o FILE]` */
int vg_cmd_upload(int argc, char **argv); /* upload.c: `vigil upload ... FILE` or `--resume` */
int vg_cmd_status(int argc, char **argv); /* status.c: each rule's state (asks the daemon) */
int vg_cmd_ps(int argc, char **argv);     /* ps.c: the processes the daemon sees */
/* generatekey.c: a new API key and the config snippet holding its hash; --output yaml|json. */
int vg_cmd_generatekey(int argc, char **argv);

/* api_client.c, shared by status and ps. */
typedef struct json_t json_t;
/* Parses --url and --api-key-file (or VIGIL_API_KEY). Returns 0, -1 after --help (exit 0) or the
 * usage exit code 2. */
int vg__cli_parse_common(int argc, char **argv, const char *usage, const char **url, char *key,
                         size_t keylen);
/* GETs base+route; on success *out is the parsed JSON. Prints its own errors. Returns 0 or 1. */
int vg__cli_api_get(const char *base, const char *key, const char *route, json_t **out);
/* A terminal-safe copy of s (control characters become '?'). Returns buf. */
const char *vg__cli_printable(const char *s, char *buf, size_t n);

#endif
