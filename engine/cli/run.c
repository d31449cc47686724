/* vigil run: the daemon's command line. */
#include "config/defaults.h"
#include "config/error.h"
#include "config/log.h"
#include "engine/cli/cli.h"
#include "engine/daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: vigil run [--config-dir DIR]... [--state-dir DIR] [--urls URL]...\n"
        "                 [--no-auth] [--log-format text|json] [--log-level LEVEL]\n"
        "                 [--shutdown-timeout SECONDS]\n"
        "  --config-dir DIR     rule and settings files (repeatable; default " VG_DEFAULT_CONFIG_DIR
        ");\n"
        "                       watched: changes are applied live (also on SIGHUP)\n"
        "  --state-dir DIR      SQLite state and spool (default Storage.StateDir "
        "or " VG_DEFAULT_STATE_DIR ")\n"
        "  --urls URL           API listener(s), overriding Server.Urls "
        "(default " VG_DEFAULT_URL ")\n"
        "  --no-auth            serve the API without authentication (logged as a "
        "warning)\n"
        "  --log-format FMT     text (default) or json\n"
        "  --log-level LEVEL    error, warn, info (default), debug, trace\n"
        "  --shutdown-timeout S how long SIGTERM waits for running actions (default 30)\n");
}

int vg_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config-dir", required_argument, NULL, 'c'},
        {"state-dir", required_argument, NULL, 's'},
        {"urls", required_argument, NULL, 'u'},
        {"no-auth", no_argument, NULL, 'n'},
        {"log-format", required_argument, NULL, 'f'},
        {"log-level", required_argument, NULL, 'l'},
        {"shutdown-timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct vg_dirlist dirs = {0}, urls = {0};
    struct vg_daemon_options o = {.shutdown_timeout_ms = 30000};
    int c, status = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:s:u:nf:l:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            vg_dirlist_add(&dirs, optarg);
            break;
        case 's':
            o.state_dir = optarg;
            break;
        case 'u':
            vg_dirlist_add(&urls, optarg);
            break;
        case 'n':
            o.no_auth = true;
            break;
        case 'f':
            if (strcmp(optarg, "json") == 0)
                vg_log_set_format(VG_LOG_JSON);
            else if (strcmp(optarg, "text") != 0) {
                fprintf(stderr, "vigil run: --log-format must be text or json\n");
                goto out;
            }
            break;
        case 'l':
            if (vg_log_parse_level(optarg, &vg_log_level) != 0) {
                fprintf(stderr, "vigil run: unknown --log-level \"%s\"\n", optarg);
                goto out;
            }
            break;
        case 't': {
            char *end;
            double s = strtod(optarg, &end);
            if (*end || s < 0 || s > 3600) {
                fprintf(stderr, "vigil run: --shutdown-timeout takes seconds (0-3600)\n");
                goto out;
            }
            o.shutdown_timeout_ms = (uint64_t)(s * 1000);
            break;
        }
        case 'h':
            usage(stdout);
            status = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vigil run: unexpected argument \"%s\"\n", argv[optind]);
        goto out;
    }
    o.config_dirs = dirs.v;
    o.n_config_dirs = dirs.n;
    o.urls = urls.v;
    o.n_urls = urls.n;
    status = vg_daemon_run(&o);
out:
    vg_dirlist_free(&dirs);
    vg_dirlist_free(&urls);
    return status;
}
