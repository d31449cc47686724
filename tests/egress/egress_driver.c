/* Test driver for the egress API: builds provider settings from flags, then either uploads one
 * file (or stdin) through vg_artifact_* or resumes what a previous (killed) run left behind.
 * stdout: the EgressPath. stderr: logs and a final "status ..." line with the counters.
 * Exit: 0 ok, 1 usage/setup, 2 fatal upload error, 3 retries exhausted, 4 auth, 5 quota or
 * KeepFree. */
#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exit_code(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case VG_ERETRY:
        return 3;
    case VG_EAUTH:
        return 4;
    case VG_EQUOTA:
    case VG_EKEEPFREE:
        return 5;
    default:
        return 2;
    }
}

static void print_status(struct vg_egress *e)
{
    struct vg_egress_status st;
    vg_egress_status(e, &st);
    fprintf(stderr,
            "status started=%llu succeeded=%llu failed=%llu retries=%llu bytes=%llu "
            "spool_bytes=%llu\n",
            (unsigned long long)st.uploads_started, (unsigned long long)st.uploads_succeeded,
            (unsigned long long)st.uploads_failed, (unsigned long long)st.retries,
            (unsigned long long)st.bytes_uploaded, (unsigned long long)st.spool_bytes);
}

int main(int argc, char **argv)
{
    struct vg_egress_settings s;
    memset(&s, 0, sizeof(s));
    struct vg_storage_settings st = {0};
    s.name = "test";
    s.max_retries = 10;
    s.retry_max_delay_ms = 1000;
    s.timeout_ms = 10000;
    const char *name = NULL, *ctype = NULL, *cmd = NULL, *file = NULL;
    struct vg_kv meta[8];
    size_t n_meta = 0;
    size_t chunk = 64 * 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(flag) (!strcmp(a, flag) && v && (++i, 1))
        if (OPT("--state"))
            st.state_dir = v;
        else if (OPT("--spool"))
            st.spool_dir = v;
        else if (OPT("--quota"))
            st.spool_quota = strtoull(v, NULL, 10);
        else if (OPT("--keep-free"))
            st.keep_free = strtoull(v, NULL, 10);
        else if (OPT("--kind"))
            s.kind = !strcmp(v, "s3")      ? VG_EGRESS_S3
                     : !strcmp(v, "azure") ? VG_EGRESS_AZURE_BLOB
                                           : VG_EGRESS_FILESYSTEM;
        else if (OPT("--dir"))
            s.u.fs.directory_path = v;
        else if (OPT("--tmp-dir"))
            s.u.fs.intermediate_directory_path = v;
        else if (OPT("--endpoint"))
            s.u.s3.endpoint = v;
        else if (OPT("--bucket"))
            s.u.s3.bucket_name = v;
        else if (OPT("--region"))
            s.u.s3.region_name = v;
        else if (OPT("--access-key"))
            s.u.s3.access_key_id = v;
        else if (OPT("--secret-key"))
            s.u.s3.secret_access_key = v;
        else if (OPT("--key-prefix"))
            s.u.s3.key_prefix = v;
        else if (OPT("--part-size"))
            s.u.s3.part_size = strtoull(v, NULL, 10);
        else if (OPT("--presign-s"))
            s.u.s3.presigned_url_expiry_ms = strtoull(v, NULL, 10) * 1000;
        else if (!strcmp(a, "--path-style"))
            s.u.s3.force_path_style = true;
        else if (OPT("--account-uri"))
            s.u.azure.account_uri = v;
        else if (OPT("--container"))
            s.u.azure.container_name = v;
        else if (OPT("--blob-prefix"))
            s.u.azure.blob_prefix = v;
        else if (OPT("--sas"))
            s.u.azure.shared_access_signature = v;
        else if (OPT("--account-key"))
            s.u.azure.account_key = v;
        else if (OPT("--block-size"))
            s.u.azure.block_size = strtoull(v, NULL, 10);
        else if (OPT("--compression"))
            s.compression = !strcmp(v, "gzip")   ? VG_COMPRESS_GZIP
                            : !strcmp(v, "zstd") ? VG_COMPRESS_ZSTD
                                                 : VG_COMPRESS_NONE;
        else if (OPT("--retries"))
            s.max_retries = (unsigned)strtoul(v, NULL, 10);
        else if (OPT("--max-delay-ms"))
            s.retry_max_delay_ms = strtoull(v, NULL, 10);
        else if (OPT("--timeout-ms"))
            s.timeout_ms = strtoull(v, NULL, 10);
        else if (OPT("--name"))
            name = v;
        else if (OPT("--content-type"))
            ctype = v;
        else if (OPT("--chunk"))
            chunk = strtoull(v, NULL, 10);
        else if (OPT("--meta") && n_meta < 8) {
            char *eq = strchr(argv[i], '=');
            if (!eq)
                return 1;
            *eq = '\0';
            meta[n_meta++] = (struct vg_kv){argv[i], eq + 1};
        } else if (!strcmp(a, "--debug"))
            vg_log_level = VG_LOG_DEBUG;
        else if (!cmd)
            cmd = a;
        else if (!file)
            file = a;
        else {
            fprintf(stderr, "usage: egress_driver [options] put FILE|- | resume\n");
            return 1;
        }
#undef OPT
    }
    if (!cmd || (strcmp(cmd, "put") && strcmp(cmd, "resume")) || (!strcmp(cmd, "put") && !file)) {
        fprintf(stderr, "usage: egress_driver [options] put FILE|- | resume\n");
        return 1;
    }
    struct vg_egress *e = NULL;
    char err[512] = "";
    int rc = vg_egress_create(&s, 1, &st, &e, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "error: %s: %s\n", vg_err_name(rc), err);
        return 1;
    }
    if (!strcmp(cmd, "resume")) {
        rc = vg_egress_resume_all(e);
        if (!rc)
            rc = vg_egress_resume_wait(e, 0);
        struct vg_egress_status stt;
        vg_egress_status(e, &stt);
        print_status(e);
        vg_egress_destroy(e);
        return rc ? 1 : (stt.uploads_failed ? 2 : 0);
    }
    int fd = strcmp(file, "-") ? open(file, O_RDONLY) : 0;
    if (fd < 0) {
        perror(file);
        vg_egress_destroy(e);
        return 1;
    }
    if (!name) {
        const char *slash = strrchr(file, '/');
        name = slash ? slash + 1 : file;
    }
    struct vg_artifact *a = NULL;
    rc = vg_artifact_open(e, "test", name, ctype, meta, n_meta, &a);
    char *buf = malloc(chunk);
    while (!rc && buf) {
        ssize_t n = read(fd, buf, chunk);
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        rc = vg_artifact_write(a, buf, (size_t)n);
    }
    free(buf);
    if (fd > 0)
        close(fd);
    char *path = NULL;
    if (rc) {
        fprintf(stderr, "error: %s: %s\n", vg_err_name(rc), a ? vg_artifact_error(a) : "");
        vg_artifact_abort(a);
    } else {
        rc = vg_artifact_commit(a, &path, err, sizeof(err));
        if (rc)
            fprintf(stderr, "error: %s: %s\n", vg_err_name(rc), err);
        else
            printf("%s\n", path);
    }
    free(path);
    print_status(e);
    vg_egress_destroy(e);
    return exit_code(rc);
}
