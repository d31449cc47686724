/* Unit tests of the egress core that need no server: FileSystem provider, spool quota and
 * KeepFree, name/metadata validation, provider settings errors, retries against a closed port,
 * the state schema, resume of a leftover upload and cancellation on destroy. */
#include "config/error.h"
#include "config/log.h"
#include "config/util.h"
#include "egress/egress.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

static char *tmpdir(void)
{
    char tmpl[] = "/tmp/vg-egress-unit-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void rm_rf(const char *path)
{
    char *cmd = vg_asprintf("rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static size_t count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

struct env {
    char *root;
    char *out;
    struct vg_storage_settings st;
    char *state, *spool;
};

static void env_init(struct env *v)
{
    v->root = tmpdir();
    v->out = vg_asprintf("%s/out", v->root);
    v->state = vg_asprintf("%s/state", v->root);
    v->spool = vg_asprintf("%s/spool", v->root);
    memset(&v->st, 0, sizeof(v->st));
    v->st.state_dir = v->state;
    v->st.spool_dir = v->spool;
}

static void env_free(struct env *v)
{
    rm_rf(v->root);
    free(v->root);
    free(v->out);
    free(v->state);
    free(v->spool);
}

static struct vg_egress_settings fs_settings(const char *dir, enum vg_compression c)
{
    struct vg_egress_settings s;
    memset(&s, 0, sizeof(s));
    s.name = "Files";
    s.kind = VG_EGRESS_FILESYSTEM;
    s.compression = c;
    s.max_retries = 2;
    s.u.fs.directory_path = dir;
    return s;
}

/* An S3 provider pointing at a closed loopback port: every request is a connection error. */
static struct vg_egress_settings dead_s3(void)
{
    struct vg_egress_settings s;
    memset(&s, 0, sizeof(s));
    s.name = "DeadS3";
    s.kind = VG_EGRESS_S3;
    s.max_retries = 2;
    s.retry_max_delay_ms = 1000;
    s.timeout_ms = 2000;
    s.u.s3.endpoint = "http://127.0.0.1:1";
    s.u.s3.bucket_name = "b";
    s.u.s3.access_key_id = "AK";
    s.u.s3.secret_access_key = "SK";
    s.u.s3.force_path_style = true;
    return s;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (unsigned char)(seed >> 16);
    }
}

static void test_fs_roundtrip(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress_settings s = fs_settings(v.out, VG_COMPRESS_NONE);
    struct vg_egress *e = NULL;
    char err[256];
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, err, sizeof(err)), 0);
    size_t n = 3 * 1024 * 1024 + 17;
    unsigned char *data = malloc(n);
    fill(data, n, 7);
    struct vg_artifact *a = NULL;
    struct vg_kv meta[] = {{"pid", "42"}};
    assert_int_equal(vg_artifact_open(e, "files", "core.1", "application/x-core", meta, 1, &a), 0);
    for (size_t off = 0; off < n; off += 100000)
        assert_int_equal(vg_artifact_write(a, data + off, n - off < 100000 ? n - off : 100000), 0);
    /* Nothing is visible at the destination before commit. */
    char *dest = vg_asprintf("%s/core.1", v.out);
    assert_int_not_equal(access(dest, F_OK), 0);
    char *path = NULL;
    assert_int_equal(vg_artifact_commit(a, &path, err, sizeof(err)), 0);
    assert_non_null(path);
    assert_int_equal(path[0], '/');
    assert_non_null(strstr(path, "/out/core.1"));
    size_t len = 0;
    char *got = read_file(dest, &len);
    assert_int_equal(len, n);
    assert_memory_equal(got, data, n);
    struct stat sb;
    assert_int_equal(stat(dest, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *partial = vg_asprintf("%s/.vigil-partial", v.out);
    assert_int_equal(count_files(partial), 0);
    struct vg_egress_status stt;
    vg_egress_status(e, &stt);
    assert_int_equal(stt.uploads_started, 1);
    assert_int_equal(stt.uploads_succeeded, 1);
    assert_int_equal(stt.uploads_failed, 0);
    assert_int_equal(stt.bytes_uploaded, n);
    assert_int_equal(stt.uploads_active, 0);
    struct vg_egress_upload_info *ups = NULL;
    size_t n_ups = 0;
    assert_int_equal(vg_egress_uploads(e, 10, &ups, &n_ups), 0);
    assert_int_equal(n_ups, 1);
    assert_string_equal(ups[0].state, "done");
    assert_string_equal(ups[0].provider, "Files");
    assert_int_equal(ups[0].bytes_done, n);
    assert_string_equal(ups[0].egress_path, path);
    assert_null(ups[0].last_error);
    vg_egress_uploads_free(ups, n_ups);
    vg_egress_destroy(e);
    free(partial);
    free(got);
    free(path);
    free(dest);
    free(data);
    env_free(&v);
}

/* Two artifacts with one name (one process dumped twice within a millisecond): the second
 * never replaces the first; it is stored as NAME_2 (before a short extension), and its
 * EgressPath says so. */
static void test_fs_same_name(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress_settings s = fs_settings(v.out, VG_COMPRESS_NONE);
    struct vg_egress *e = NULL;
    char err[256];
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, err, sizeof(err)), 0);
    const char *names[] = {"core_1", "core_1", "core_1", "snap.heapsnapshot", "snap.heapsnapshot"};
    const char *want[] = {"/core_1", "/core_1_2", "/core_1_3", "/snap.heapsnapshot",
                          "/snap_2.heapsnapshot"};
    struct vg_artifact *a[5];
    /* all open at once: both partial files exist side by side, the names clash at commit */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(vg_artifact_open(e, "files", names[i], NULL, NULL, 0, &a[i]), 0);
        char body[16];
        snprintf(body, sizeof(body), "artifact %d", i);
        assert_int_equal(vg_artifact_write(a[i], body, strlen(body)), 0);
    }
    for (int i = 0; i < 5; i++) {
        char *path = NULL;
        assert_int_equal(vg_artifact_commit(a[i], &path, err, sizeof(err)), 0);
        assert_non_null(path);
        size_t pl = strlen(path), wl = strlen(want[i]);
        assert_true(pl > wl);
        assert_string_equal(path + pl - wl, want[i]);
        size_t len = 0;
        char *got = read_file(path, &len);
        char body[16];
        snprintf(body, sizeof(body), "artifact %d", i);
        assert_int_equal(len, strlen(body));
        assert_memory_equal(got, body, len);
        free(got);
        free(path);
    }
    vg_egress_destroy(e);
    env_free(&v);
}

static void test_fs_compression(void **unused)
{
    for (int c = VG_COMPRESS_GZIP; c <= VG_COMPRESS_ZSTD; c++) {
        struct env v;
        env_init(&v);
        struct vg_egress_settings s = fs_settings(v.out, (enum vg_compression)c);
        struct vg_egress *e = NULL;
        assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, NULL, 0), 0);
        size_t n = 1 << 20;
        unsigned char *data = malloc(n);
        memset(data, 'x', n);
        fill(data, 1000, 3);
        struct vg_artifact *a = NULL;
        assert_int_equal(vg_artifact_open(e, "Files", "dump", NULL, NULL, 0, &a), 0);
        assert_int_equal(vg_artifact_write(a, data, n), 0);
        char *path = NULL;
        assert_int_equal(vg_artifact_commit(a, &path, NULL, 0), 0);
        const char *ext = c == VG_COMPRESS_GZIP ? ".gz" : ".zst";
        assert_non_null(strstr(path, ext));
        size_t len = 0;
        char *z = read_file(path, &len);
        assert_true(len < n / 10);
        unsigned char *back = malloc(n);
        size_t back_len = 0;
        if (c == VG_COMPRESS_GZIP) {
            z_stream zs;
            memset(&zs, 0, sizeof(zs));
            assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
            zs.next_in = (Bytef *)z;
            zs.avail_in = (uInt)len;
            zs.next_out = back;
            zs.avail_out = (uInt)n;
            assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
            back_len = zs.total_out;
            inflateEnd(&zs);
        } else {
            back_len = ZSTD_decompress(back, n, z, len);
            assert_false(ZSTD_isError(back_len));
        }
        assert_int_equal(back_len, n);
        assert_memory_equal(back, data, n);
        free(back);
        free(z);
        free(path);
        free(data);
        vg_egress_destroy(e);
        env_free(&v);
    }
}

static void test_quota(void **unused)
{
    struct env v;
    env_init(&v);
    v.st.spool_quota = 1000;
    struct vg_egress_settings s = dead_s3();
    struct vg_egress *e = NULL;
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, NULL, 0), 0);
    struct vg_artifact *a = NULL;
    char buf[600] = {0};
    assert_int_equal(vg_artifact_open(e, "DeadS3", "x", NULL, NULL, 0, &a), 0);
    assert_int_equal(vg_artifact_write(a, buf, sizeof(buf)), 0);
    struct vg_egress_status stt;
    vg_egress_status(e, &stt);
    assert_int_equal(stt.spool_bytes, 600);
    assert_int_equal(stt.spool_quota, 1000);
    assert_int_equal(vg_artifact_write(a, buf, sizeof(buf)), VG_EQUOTA);
    assert_non_null(strstr(vg_artifact_error(a), "Storage.SpoolQuota"));
    /* failed for good: later writes keep failing */
    assert_int_equal(vg_artifact_write(a, buf, 1), VG_EQUOTA);
    char *path = NULL;
    char err[256];
    assert_int_equal(vg_artifact_commit(a, &path, err, sizeof(err)), VG_EQUOTA);
    assert_null(path);
    assert_non_null(strstr(err, "quota"));
    vg_egress_status(e, &stt);
    assert_int_equal(stt.spool_bytes, 0);
    assert_int_equal(count_files(v.spool), 0);
    vg_egress_destroy(e);
    env_free(&v);
}

static void test_keep_free(void **unused)
{
    struct env v;
    env_init(&v);
    v.st.keep_free = 1ull << 62; /* more than any disk: every write would cross the floor */
    struct vg_egress_settings s = fs_settings(v.out, VG_COMPRESS_NONE);
    struct vg_egress *e = NULL;
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, NULL, 0), 0);
    struct vg_artifact *a = NULL;
    assert_int_equal(vg_artifact_open(e, "Files", "x", NULL, NULL, 0, &a), 0);
    assert_int_equal(vg_artifact_write(a, "abc", 3), VG_EKEEPFREE);
    assert_non_null(strstr(vg_artifact_error(a), "KeepFree"));
    vg_artifact_abort(a);
    char *partial = vg_asprintf("%s/.vigil-partial", v.out);
    assert_int_equal(count_files(partial), 0);
    assert_int_equal(count_files(v.out), 0);
    free(partial);
    vg_egress_destroy(e);
    env_free(&v);
}

static void test_names(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress_settings s[2] = {fs_settings(v.out, VG_COMPRESS_NONE), dead_s3()};
    struct vg_egress *e = NULL;
    assert_int_equal(vg_egress_create(s, 2, &v.st, &e, NULL, 0), 0);
    struct vg_artifact *a = NULL;
    const char *bad[] = {"", "/abs", "../x", "a/../b", "a//b", "a/./b", "x\ny"};
    for (size_t i = 0; i < VG_ARRAY_SIZE(bad); i++)
        assert_int_equal(vg_artifact_open(e, "DeadS3", bad[i], NULL, NULL, 0, &a), VG_EINVAL);
    assert_int_equal(vg_artifact_open(e, "Files", "a/b", NULL, NULL, 0, &a), VG_EINVAL);
    assert_int_equal(vg_artifact_open(e, "nope", "a", NULL, NULL, 0, &a), VG_ENOTFOUND);
    struct vg_kv badmeta[] = {{"a-b", "v"}};
    assert_int_equal(vg_artifact_open(e, "DeadS3", "a", NULL, badmeta, 1, &a), VG_EINVAL);
    struct vg_kv badval[] = {{"ok", "line\nbreak"}};
    assert_int_equal(vg_artifact_open(e, "DeadS3", "a", NULL, badval, 1, &a), VG_EINVAL);
    assert_null(a);
    assert_int_equal(vg_artifact_open(e, "deads3", "dir/sub/a.core", NULL, NULL, 0, &a), 0);
    vg_artifact_abort(a);
    assert_int_equal(count_files(v.spool), 0);
    vg_egress_destroy(e);
    env_free(&v);
}

static void test_settings_errors(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress *e = NULL;
    char err[512];
    struct vg_egress_settings s = dead_s3();
    s.u.s3.bucket_name = NULL;
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, err, sizeof(err)), VG_ECONFIG);
    assert_null(e);
    assert_non_null(strstr(err, "S3Storage.DeadS3"));
    assert_non_null(strstr(err, "BucketName"));

    s = dead_s3();
    s.u.s3.access_key_id = NULL;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_ROLE_ARN");
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token", 1);
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, err, sizeof(err)), VG_ECONFIG);
    assert_non_null(strstr(err, "AWS_ROLE_ARN"));
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/r", 1);
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, err, sizeof(err)), 0);
    vg_egress_destroy(e);
    e = NULL;
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, err, sizeof(err)), VG_ECONFIG);
    assert_non_null(strstr(err, "credentials"));
    /* credentials from the environment */
    setenv("AWS_ACCESS_KEY_ID", "AK", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SK", 1);
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, err, sizeof(err)), 0);
    vg_egress_destroy(e);
    e = NULL;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");

    struct vg_egress_settings az;
    memset(&az, 0, sizeof(az));
    az.name = "Blobs";
    az.kind = VG_EGRESS_AZURE_BLOB;
    az.u.azure.account_uri = "http://127.0.0.1:1/acct";
    az.u.azure.container_name = "c";
    assert_int_equal(vg_egress_create(&az, 1, &v.st, &e, err, sizeof(err)), VG_ECONFIG);
    assert_non_null(strstr(err, "AccountKey"));
    az.u.azure.account_key = "not base64!";
    assert_int_equal(vg_egress_create(&az, 1, &v.st, &e, err, sizeof(err)), VG_ECONFIG);
    assert_non_null(strstr(err, "base64"));
    az.u.azure.account_uri = "ftp://x";
    assert_int_equal(vg_egress_create(&az, 1, &v.st, &e, err, sizeof(err)), VG_ECONFIG);
    assert_non_null(strstr(err, "AccountUri"));
    vg_egress_destroy(NULL);
    env_free(&v);
}

static void test_schema(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress_settings s = fs_settings(v.out, VG_COMPRESS_NONE);
    struct vg_egress *e = NULL;
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, NULL, 0), 0);
    char *dbp = vg_asprintf("%s/vigil.db", v.state);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(dbp, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM egress_schema", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 1);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* user_version belongs to the engine */
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    vg_egress_destroy(e);
    /* reopening an existing database works */
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, NULL, 0), 0);
    vg_egress_destroy(e);
    free(dbp);
    env_free(&v);
}

static void test_retries_then_resume_cancel(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress_settings s = dead_s3();
    struct vg_egress *e = NULL;
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, NULL, 0), 0);
    struct vg_artifact *a = NULL;
    assert_int_equal(vg_artifact_open(e, "DeadS3", "x.bin", NULL, NULL, 0, &a), 0);
    assert_int_equal(vg_artifact_write(a, "hello", 5), 0);
    char *path = NULL;
    char err[256];
    assert_int_equal(vg_artifact_commit(a, &path, err, sizeof(err)), VG_ERETRY);
    assert_non_null(strstr(err, "PutObject"));
    struct vg_egress_status stt;
    vg_egress_status(e, &stt);
    assert_int_equal(stt.retries, 2);
    assert_int_equal(stt.uploads_failed, 1);
    assert_int_equal(stt.uploads_retrying, 0);
    assert_int_equal(stt.spool_bytes, 5); /* kept for a later resume */
    assert_int_equal(count_files(v.spool), 1);
    struct vg_egress_upload_info *ups = NULL;
    size_t n_ups = 0;
    assert_int_equal(vg_egress_uploads(e, 0, &ups, &n_ups), 0);
    assert_int_equal(n_ups, 1);
    assert_string_equal(ups[0].state, "pending");
    assert_string_equal(ups[0].name, "x.bin");
    assert_int_equal(ups[0].size, 5);
    assert_int_equal(ups[0].retries, 2);
    assert_non_null(strstr(ups[0].last_error, "PutObject"));
    vg_egress_uploads_free(ups, n_ups);
    vg_egress_destroy(e);

    /* A new process resumes it; destroy cancels the backoff wait promptly. */
    s.max_retries = 1000;
    s.retry_max_delay_ms = 3600 * 1000;
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, NULL, 0), 0);
    vg_egress_status(e, &stt);
    assert_int_equal(stt.spool_bytes, 5);
    assert_int_equal(vg_egress_resume_all(e), 0);
    assert_int_equal(vg_egress_resume_all(e), VG_EBUSY);
    for (int i = 0; i < 200; i++) {
        vg_egress_status(e, &stt);
        if (stt.retries >= 2)
            break;
        usleep(50 * 1000);
    }
    assert_true(stt.retries >= 1);
    assert_int_equal(vg_egress_resume_wait(e, 100), VG_ETIMEDOUT);
    vg_egress_destroy(e); /* the test's timeout catches a hang */
    assert_int_equal(count_files(v.spool), 1);
    env_free(&v);
}

/* vg_egress_upload_cancel: an artifact being written fails its next write; a pending upload is
 * cancelled at once (spool gone, never resumed); a finished one cannot be cancelled. */
static void test_cancel(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress_settings s[2] = {dead_s3(), fs_settings(v.out, VG_COMPRESS_NONE)};
    s[0].max_retries = 0;
    struct vg_egress *e = NULL;
    assert_int_equal(vg_egress_create(s, 2, &v.st, &e, NULL, 0), 0);
    char err[256];
    char *path = NULL;
    /* being written */
    struct vg_artifact *a = NULL;
    assert_int_equal(vg_artifact_open(e, "Files", "w.bin", NULL, NULL, 0, &a), 0);
    int64_t id = vg_artifact_id(a);
    assert_int_equal(vg_artifact_write(a, "abc", 3), 0);
    assert_int_equal(vg_egress_upload_cancel(e, id), 0);
    assert_int_equal(vg_artifact_write(a, "abc", 3), VG_ECANCELED);
    vg_artifact_abort(a);
    /* pending after its retries ran out */
    assert_int_equal(vg_artifact_open(e, "DeadS3", "p.bin", NULL, NULL, 0, &a), 0);
    id = vg_artifact_id(a);
    assert_int_equal(vg_artifact_write(a, "hello", 5), 0);
    assert_int_equal(vg_artifact_commit(a, &path, err, sizeof(err)), VG_ERETRY);
    assert_int_equal(count_files(v.spool), 1);
    struct vg_egress_upload_info x;
    assert_int_equal(vg_egress_upload_get(e, id, &x), 0);
    assert_string_equal(x.state, "pending");
    vg_egress_upload_info_free(&x);
    assert_int_equal(vg_egress_upload_cancel(e, id), 0);
    assert_int_equal(vg_egress_upload_get(e, id, &x), 0);
    assert_string_equal(x.state, "cancelled");
    vg_egress_upload_info_free(&x);
    assert_int_equal(count_files(v.spool), 0);
    struct vg_egress_status st;
    vg_egress_status(e, &st);
    assert_int_equal(st.spool_bytes, 0);
    assert_int_equal(vg_egress_upload_cancel(e, id), VG_ESTATE);
    /* a resume leaves it alone */
    assert_int_equal(vg_egress_resume_all(e), 0);
    assert_int_equal(vg_egress_resume_wait(e, 0), 0);
    assert_int_equal(vg_egress_upload_get(e, id, &x), 0);
    assert_string_equal(x.state, "cancelled");
    vg_egress_upload_info_free(&x);
    /* finished */
    assert_int_equal(vg_artifact_open(e, "Files", "d.bin", NULL, NULL, 0, &a), 0);
    id = vg_artifact_id(a);
    assert_int_equal(vg_artifact_commit(a, &path, err, sizeof(err)), 0);
    free(path);
    assert_int_equal(vg_egress_upload_cancel(e, id), VG_ESTATE);
    assert_int_equal(vg_egress_upload_cancel(e, id + 1000), VG_ENOTFOUND);
    assert_int_equal(vg_egress_upload_get(e, id + 1000, &x), VG_ENOTFOUND);
    vg_egress_destroy(e);
    env_free(&v);
}

struct writer {
    struct vg_egress *e;
    int idx;
    int rc;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char name[32];
    snprintf(name, sizeof(name), "art-%d", w->idx);
    struct vg_artifact *a = NULL;
    w->rc = vg_artifact_open(w->e, "Files", name, NULL, NULL, 0, &a);
    unsigned char buf[4096];
    for (int i = 0; i < 64 && !w->rc; i++) {
        memset(buf, w->idx, sizeof(buf));
        w->rc = vg_artifact_write(a, buf, sizeof(buf));
    }
    char *path = NULL;
    if (!w->rc)
        w->rc = vg_artifact_commit(a, &path, NULL, 0);
    free(path);
    return NULL;
}

/* The engine commits from several worker threads at once: one egress, many artifacts. */
static void test_concurrent_commits(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress_settings s = fs_settings(v.out, VG_COMPRESS_NONE);
    struct vg_egress *e = NULL;
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e, NULL, 0), 0);
    struct writer w[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (struct writer){.e = e, .idx = i + 1};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].rc, 0);
        char *p = vg_asprintf("%s/art-%d", v.out, i + 1);
        size_t len = 0;
        char *got = read_file(p, &len);
        assert_int_equal(len, 64 * 4096);
        for (size_t j = 0; j < len; j++)
            assert_int_equal((unsigned char)got[j], i + 1);
        free(got);
        free(p);
    }
    struct vg_egress_status st;
    vg_egress_status(e, &st);
    assert_int_equal(st.uploads_succeeded, 6);
    assert_int_equal(st.uploads_active, 0);
    assert_int_equal(st.bytes_uploaded, 6 * 64 * 4096);
    vg_egress_destroy(e);
    env_free(&v);
}

/* A reload builds a second vg_egress while the first one still writes: the second one's resume
 * must leave the live artifact alone (not discard it as an orphaned "spooling" row). */
static void test_resume_skips_live_uploads(void **unused)
{
    struct env v;
    env_init(&v);
    struct vg_egress_settings s = fs_settings(v.out, VG_COMPRESS_NONE);
    struct vg_egress *e1 = NULL, *e2 = NULL;
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e1, NULL, 0), 0);
    struct vg_artifact *a = NULL;
    assert_int_equal(vg_artifact_open(e1, "Files", "live", NULL, NULL, 0, &a), 0);
    assert_int_equal(vg_artifact_write(a, "first ", 6), 0);
    assert_int_equal(vg_egress_create(&s, 1, &v.st, &e2, NULL, 0), 0);
    assert_int_equal(vg_egress_resume_all(e2), 0);
    assert_int_equal(vg_egress_resume_wait(e2, 0), 0);
    struct vg_egress_status st;
    vg_egress_status(e2, &st);
    assert_int_equal(st.uploads_started, 0);
    assert_int_equal(vg_artifact_write(a, "second", 6), 0);
    char *path = NULL;
    assert_int_equal(vg_artifact_commit(a, &path, NULL, 0), 0);
    size_t len = 0;
    char *got = read_file(path, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(got, "first second", 12);
    free(got);
    free(path);
    vg_egress_destroy(e2);
    vg_egress_destroy(e1);
    env_free(&v);
}

int main(void)
{
    vg_log_level = VG_LOG_ERROR;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fs_roundtrip),
        cmocka_unit_test(test_fs_compression),
        cmocka_unit_test(test_fs_same_name),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_keep_free),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_settings_errors),
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_retries_then_resume_cancel),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_concurrent_commits),
        cmocka_unit_test(test_resume_skips_live_uploads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
