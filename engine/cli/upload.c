/* vigil upload: ad-hoc upload of one file through a configured egress provider, or completion
 * of the uploads a previous run left behind (--resume). */
#include "config/defaults.h"
#include "config/config.h"
#include "config/error.h"
#include "config/log.h"
#include "egress/egress.h"
#include "engine/cli/cli.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vigil upload [--config-dir DIR]... --egress NAME [--name N] "
            "[--content-type T] FILE\n"
            "       vigil upload [--config-dir DIR]... --resume\n"
            "  Uploads FILE ('-' for stdin) with the egress provider NAME (spooled, retried,\n"
            "  resumable) and prints its EgressPath. --resume completes uploads left pending\n"
            "  by an earlier run. Exit 0 ok, 1 failed, 2 usage, 3 left pending (retry later).\n");
}

static int load(const char **dirs, size_t n, struct vg_config **cfg)
{
    static const char *const def[] = {VG_DEFAULT_CONFIG_DIR};
    struct vg_diags d;
    vg_diags_init(&d);
    int rc = vg_config_load(n ? dirs : def, n ? n : 1, &d, cfg);
    vg_diags_sort(&d);
    for (size_t i = 0; i < d.n; i++) {
        char *line = vg_diag_format(&d.v[i]);
        fprintf(stderr, "%s\n", line ? line : "(out of memory)");
        free(line);
    }
    if (rc)
        fprintf(stderr, "vigil upload: configuration: %s\n", vg_strerror(rc));
    vg_diags_free(&d);
    return rc;
}

static int put_file(struct vg_egress *e, const char *provider, const char *file, const char *name,
                    const char *ctype)
{
    int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (fd < 0) {
        fprintf(stderr, "vigil upload: %s: %s\n", file, vg_strerror(-errno));
        return 1;
    }
    if (!name) {
        const char *slash = strrchr(file, '/');
        name = strcmp(file, "-") ? (slash ? slash + 1 : file) : "stdin";
    }
    struct vg_artifact *a = NULL;
    int rc = vg_artifact_open(e, provider, name, ctype, NULL, 0, &a);
    size_t bufsz = 256 * 1024;
    char *buf = rc ? NULL : malloc(bufsz);
    if (!rc && !buf)
        rc = VG_ENOMEM;
    while (!rc) {
        ssize_t n = read(fd, buf, bufsz);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        rc = vg_artifact_write(a, buf, (size_t)n);
    }
    free(buf);
    if (fd != STDIN_FILENO)
        close(fd);
    char err[512] = "";
    char *path = NULL;
    if (rc) {
        fprintf(stderr, "vigil upload: %s: %s\n", vg_strerror(rc),
                a ? vg_artifact_error(a) : "cannot open the artifact");
        vg_artifact_abort(a);
        return 1;
    }
    rc = vg_artifact_commit(a, &path, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "vigil upload: %s: %s\n", vg_strerror(rc), err);
        return rc == VG_ERETRY ? 3 : 1;
    }
    printf("%s\n", path);
    free(path);
    return 0;
}

int vg_cmd_upload(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config-dir", required_argument, NULL, 'c'},
        {"egress", required_argument, NULL, 'e'},
        {"name", required_argument, NULL, 'n'},
        {"content-type", required_argument, NULL, 't'},
        {"resume", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char **dirs = NULL;
    size_t n_dirs = 0;
    const char *provider = NULL, *name = NULL, *ctype = NULL;
    bool resume = false;
    int c, status = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:e:n:t:rh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': {
            const char **v = realloc(dirs, (n_dirs + 1) * sizeof(*v));
            if (!v) {
                status = 1;
                goto out;
            }
            dirs = v;
            dirs[n_dirs++] = optarg;
            break;
        }
        case 'e':
            provider = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 't':
            ctype = optarg;
            break;
        case 'r':
            resume = true;
            break;
        case 'h':
            usage(stdout);
            goto out;
        default:
            usage(stderr);
            status = 2;
            goto out;
        }
    }
    if (resume ? (optind != argc || provider) : (optind + 1 != argc || !provider)) {
        usage(stderr);
        status = 2;
        goto out;
    }
    struct vg_config *cfg = NULL;
    if (load(dirs, n_dirs, &cfg)) {
        status = 1;
        goto out;
    }
    if (!resume && !vg_config_egress(cfg, provider)) {
        fprintf(stderr, "vigil upload: no egress provider named \"%s\" in the configuration\n",
                provider);
        vg_config_destroy(cfg);
        status = 1;
        goto out;
    }
    struct vg_egress *e = NULL;
    char err[512] = "";
    int rc = vg_egress_create(cfg->settings.egress, cfg->settings.n_egress, &cfg->settings.storage,
                              &e, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "vigil upload: %s\n", err[0] ? err : vg_strerror(rc));
        status = 1;
    } else if (resume) {
        rc = vg_egress_resume_all(e);
        if (!rc)
            rc = vg_egress_resume_wait(e, 0);
        struct vg_egress_status st;
        vg_egress_status(e, &st);
        printf("resumed %llu upload(s): %llu succeeded, %llu failed\n",
               (unsigned long long)st.uploads_started, (unsigned long long)st.uploads_succeeded,
               (unsigned long long)st.uploads_failed);
        status = rc || st.uploads_failed ? 1 : 0;
    } else {
        status = put_file(e, provider, argv[optind], name, ctype);
    }
    vg_egress_destroy(e);
    vg_config_destroy(cfg);
out:
    free(dirs);
    return status;
}
