/* S3Storage egress: single PUT below the part size, otherwise multipart (CreateMultipartUpload,
 * UploadPart streamed from the spool, CompleteMultipartUpload; AbortMultipartUpload on fatal
 * failure). Requests are signed with SigV4 (egress/sigv4.h) and carry the payload's SHA-256 so
 * S3 rejects corrupted bodies. Virtual-hosted or path-style addressing. */
#include "config/codec.h"
#include "config/error.h"
#include "config/log.h"
#include "egress/aws_profile.h"
#include "egress/egress_int.h"
#include "egress/sigv4.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024ull * 1024ull)
#define MIN_PART (5 * MIB)
#define MAX_PARTS 10000

struct s3 {
    struct vg__url ep;
    char *bucket;
    char *region;
    char *access_key, *secret_key, *session_token;
    bool path_style;
    char *key_prefix;
    uint64_t part_size;
    unsigned presign_s;
    char *storage_class;
    bool kms;
    char *kms_key;
    char *host; /* the Host the signature covers */
    /* Web identity (EKS IRSA and the like): temporary keys from STS, refreshed before expiry. */
    bool web_identity;
    char *token_file, *role_arn, *session_name;
    struct vg__url sts;
    time_t cred_expiry;
    pthread_mutex_t cred_mu; /* guards the keys, which a refresh replaces */
};

/* A snapshot of the keys for one request. */
struct creds_copy {
    char *ak, *sk, *tok;
};

static void creds_copy_free(struct creds_copy *c)
{
    free(c->ak);
    free(c->sk);
    free(c->tok);
}

static void s3_destroy(void *state)
{
    struct s3 *s = state;
    if (!s)
        return;
    vg__url_free(&s->ep);
    free(s->bucket);
    free(s->region);
    free(s->access_key);
    free(s->secret_key);
    free(s->session_token);
    free(s->key_prefix);
    free(s->storage_class);
    free(s->kms_key);
    free(s->host);
    free(s->token_file);
    free(s->role_arn);
    free(s->session_name);
    vg__url_free(&s->sts);
    pthread_mutex_destroy(&s->cred_mu);
    free(s);
}

static const char *env_or(const char *v, const char *env)
{
    if (v && *v)
        return v;
    const char *e = getenv(env);
    return e && *e ? e : NULL;
}

static int s3_create(const struct vg_egress_settings *set, void **state, char *err, size_t errlen)
{
    const struct vg_egress_s3 *c = &set->u.s3;
    int rc = 0;
    struct vg__aws_profile prof = {0};
    struct s3 *s = calloc(1, sizeof(*s));
    if (!s)
        return VG_ENOMEM;
    pthread_mutex_init(&s->cred_mu, NULL);
    if (!c->bucket_name || !*c->bucket_name) {
        snprintf(err, errlen, "BucketName is required");
        rc = VG_ECONFIG;
        goto out;
    }
    const char *ak = c->access_key_id && *c->access_key_id ? c->access_key_id : NULL;
    const char *sk = c->secret_access_key, *tok = c->session_token;
    /* As the AWS SDK for .NET (dotnet-monitor's) resolves them: a named profile, else
     * AWS_PROFILE or [default] of the shared files, then the environment, then web identity. */
    char profile_err[512] = "";
    if (!ak) {
        bool named = (c->aws_profile_name && *c->aws_profile_name) ||
                     (c->aws_profile_path && *c->aws_profile_path) || env_or(NULL, "AWS_PROFILE");
        const char *name = c->aws_profile_name && *c->aws_profile_name
                               ? c->aws_profile_name
                               : env_or(NULL, "AWS_PROFILE");
        int prc = vg__aws_profile_load(name ? name : "default", c->aws_profile_path, &prof,
                                       profile_err, sizeof(profile_err));
        if (prc == VG_ENOMEM) {
            rc = prc;
            goto out;
        }
        if (prc && named) {
            snprintf(err, errlen, "%s", profile_err);
            rc = VG_ECONFIG;
            goto out;
        }
        if (prc == 0) {
            ak = prof.access_key_id;
            sk = prof.secret_access_key;
            tok = prof.session_token;
        } else if (prc == VG_ENOTFOUND) {
            profile_err[0] = '\0'; /* no [default] profile: nothing to say */
        }
    }
    const char *region = env_or(c->region_name, "AWS_REGION");
    if (!region)
        region = env_or(prof.region, "AWS_DEFAULT_REGION");
    s->region = vg_strdup(region ? region : "us-east-1");
    if (!ak) {
        ak = env_or(NULL, "AWS_ACCESS_KEY_ID");
        sk = env_or(NULL, "AWS_SECRET_ACCESS_KEY");
        tok = env_or(NULL, "AWS_SESSION_TOKEN");
    }
    const char *tf = env_or(NULL, "AWS_WEB_IDENTITY_TOKEN_FILE");
    if (!ak && tf) {
        const char *role = env_or(NULL, "AWS_ROLE_ARN");
        if (!role) {
            snprintf(err, errlen,
                     "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: web identity "
                     "needs both");
            rc = VG_ECONFIG;
            goto out;
        }
        const char *sn = env_or(NULL, "AWS_ROLE_SESSION_NAME");
        s->web_identity = true;
        s->token_file = vg_strdup(tf);
        s->role_arn = vg_strdup(role);
        s->session_name = sn ? vg_strdup(sn) : vg_asprintf("vigil-%ld", (long)getpid());
        /* AWS_ENDPOINT_URL_STS: the SDKs' standard override (VPC endpoints, emulators). */
        const char *sts = env_or(NULL, "AWS_ENDPOINT_URL_STS");
        char *sts_url =
            sts ? vg_strdup(sts) : vg_asprintf("https://sts.%s.amazonaws.com", s->region);
        rc = sts_url ? vg__url_split(sts_url, &s->sts) : VG_ENOMEM;
        free(sts_url);
        if (rc == VG_EINVAL) {
            snprintf(err, errlen, "AWS_ENDPOINT_URL_STS: expected http(s)://host[:port]");
            rc = VG_ECONFIG;
        }
        if (rc)
            goto out;
        if (!s->token_file || !s->role_arn || !s->session_name) {
            rc = VG_ENOMEM;
            goto out;
        }
    } else if (!ak || !sk || !*sk) {
        snprintf(err, errlen,
                 "no credentials: set AccessKeyId and SecretAccessKey, AwsProfileName (a profile "
                 "of the AWS shared credentials file), or AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY%s%s",
                 profile_err[0] ? "; " : "", profile_err);
        rc = VG_ECONFIG;
        goto out;
    }
    if (!s->web_identity) {
        s->access_key = vg_strdup(ak);
        s->secret_key = vg_strdup(sk);
        s->session_token = tok && *tok ? vg_strdup(tok) : NULL;
        if (!s->access_key || !s->secret_key) {
            rc = VG_ENOMEM;
            goto out;
        }
    }
    char *ep = c->endpoint && *c->endpoint ? vg_strdup(c->endpoint)
                                           : vg_asprintf("https://s3.%s.amazonaws.com", s->region);
    rc = ep ? vg__url_split(ep, &s->ep) : VG_ENOMEM;
    free(ep);
    if (rc == VG_EINVAL) {
        snprintf(err, errlen, "Endpoint: expected http(s)://host[:port], got '%s'", c->endpoint);
        rc = VG_ECONFIG;
    }
    if (rc)
        goto out;
    if (s->ep.path[0]) {
        snprintf(err, errlen, "Endpoint: a path ('%s') is not supported", s->ep.path);
        rc = VG_ECONFIG;
        goto out;
    }
    s->bucket = vg_strdup(c->bucket_name);
    s->path_style = c->force_path_style;
    const char *kp = c->key_prefix ? c->key_prefix : "";
    while (*kp == '/')
        kp++;
    s->key_prefix = vg_strdup(kp);
    size_t kl = strlen(s->key_prefix);
    while (kl && s->key_prefix[kl - 1] == '/')
        s->key_prefix[--kl] = '\0';
    s->part_size = c->part_size ? c->part_size : 8 * MIB;
    if (s->part_size < MIN_PART)
        s->part_size = MIN_PART;
    s->presign_s = (unsigned)((c->presigned_url_expiry_ms + 999) / 1000);
    if (s->presign_s > 7 * 24 * 3600) {
        snprintf(err, errlen, "PreSignedUrlExpiry: at most 7 days");
        rc = VG_ECONFIG;
        goto out;
    }
    s->storage_class = vg_strdup(c->storage_class);
    s->kms = c->use_kms_encryption;
    s->kms_key = vg_strdup(c->kms_encryption_key);
    s->host =
        s->path_style ? vg_strdup(s->ep.hostport) : vg_asprintf("%s.%s", s->bucket, s->ep.hostport);
    if (!s->region || !s->bucket || !s->key_prefix || !s->host)
        rc = VG_ENOMEM;
out:
    vg__aws_profile_free(&prof);
    if (rc)
        s3_destroy(s);
    else
        *state = s;
    return rc;
}

/* The object path (unencoded): "/key" or "/bucket/key". */
static char *object_path(struct s3 *s, const struct vg__upload *u)
{
    const char *sep = s->key_prefix[0] ? "/" : "";
    if (s->path_style)
        return vg_asprintf("/%s/%s%s%s", s->bucket, s->key_prefix, sep, u->name);
    return vg_asprintf("/%s%s%s", s->key_prefix, sep, u->name);
}

static int form_add(struct vg_buf *b, const char *k, const char *v)
{
    int rc = vg_buf_printf(b, "%s%s=", b->len ? "&" : "", k);
    return rc ? rc : vg_url_encode(v, false, b);
}

/* "2026-11-22T03:16:00Z" (fraction allowed) -> epoch; 0 when unreadable. */
static time_t parse_iso8601(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* AssumeRoleWithWebIdentity (an unsigned request: the token is the credential). Called with
 * cred_mu held. The token file is read each time: it is rotated by its issuer. */
static int sts_refresh(struct s3 *s, struct vg__upload *u)
{
    int rc = 0;
    struct vg_buf tok, body;
    vg_buf_init(&tok);
    vg_buf_init(&body);
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    struct curl_slist *hl = NULL;
    char *url = NULL, *ak = NULL, *sk = NULL, *st = NULL, *exp = NULL;
    FILE *f = fopen(s->token_file, "re");
    if (!f) {
        snprintf(u->err, sizeof(u->err), "AWS_WEB_IDENTITY_TOKEN_FILE %s: %s", s->token_file,
                 vg_strerror(-errno));
        rc = VG_EAUTH;
        goto out;
    }
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && tok.len < 64 * 1024)
        if ((rc = vg_buf_append(&tok, chunk, n)))
            break;
    fclose(f);
    while (tok.len && (tok.data[tok.len - 1] == '\n' || tok.data[tok.len - 1] == '\r' ||
                       tok.data[tok.len - 1] == ' '))
        tok.data[--tok.len] = '\0';
    if (!rc && !tok.len) {
        snprintf(u->err, sizeof(u->err), "AWS_WEB_IDENTITY_TOKEN_FILE %s is empty", s->token_file);
        rc = VG_EAUTH;
    }
    if (rc || (rc = form_add(&body, "Action", "AssumeRoleWithWebIdentity")) ||
        (rc = form_add(&body, "Version", "2011-06-15")) ||
        (rc = form_add(&body, "RoleArn", s->role_arn)) ||
        (rc = form_add(&body, "RoleSessionName", s->session_name)) ||
        (rc = form_add(&body, "WebIdentityToken", tok.data)))
        goto out;
    url = vg_asprintf("%s://%s%s/", s->sts.scheme, s->sts.hostport, s->sts.path);
    struct curl_slist *h1 =
        vg__curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    struct curl_slist *h2 = h1 ? vg__curl_slist_append(h1, "Expect:") : NULL;
    hl = h2 ? h2 : h1;
    if (!url || !h2) {
        rc = VG_ENOMEM;
        goto out;
    }
    struct vg__client_req req = {.method = "POST",
                                 .url = url,
                                 .headers = hl,
                                 .body_fd = -1,
                                 .body = body.data,
                                 .body_mem_len = body.len};
    if ((rc = vg__client_do(u, &req, &r)) ||
        (rc = vg__client_judge(u, &r, "STS AssumeRoleWithWebIdentity")))
        goto out;
    ak = vg__xml_text(r.body.data, "AccessKeyId");
    sk = vg__xml_text(r.body.data, "SecretAccessKey");
    st = vg__xml_text(r.body.data, "SessionToken");
    exp = vg__xml_text(r.body.data, "Expiration");
    time_t expiry = parse_iso8601(exp);
    if (!ak || !sk || !st || !expiry) {
        snprintf(u->err, sizeof(u->err), "STS AssumeRoleWithWebIdentity: unexpected reply");
        rc = VG_ERETRY;
        goto out;
    }
    free(s->access_key);
    free(s->secret_key);
    free(s->session_token);
    s->access_key = ak;
    s->secret_key = sk;
    s->session_token = st;
    ak = sk = st = NULL;
    s->cred_expiry = expiry;
    vg_log(VG_LOG_INFO, u->prov->component,
           "temporary credentials from STS (web identity, role %s) valid until %s", s->role_arn,
           exp);
out:
    free(ak);
    free(sk);
    free(st);
    free(exp);
    free(url);
    vg__curl_slist_free_all(hl);
    vg__client_resp_free(&r);
    vg_buf_free(&tok);
    vg_buf_free(&body);
    return rc;
}

/* Copies the current keys, refreshing web identity keys that expire within 5 minutes (only
 * when u is given: a request in progress can do network I/O). */
static int creds_get(struct s3 *s, struct vg__upload *u, struct creds_copy *cc)
{
    memset(cc, 0, sizeof(*cc));
    int rc = 0;
    pthread_mutex_lock(&s->cred_mu);
    if (s->web_identity && u && (!s->access_key || time(NULL) + 300 >= s->cred_expiry))
        rc = sts_refresh(s, u);
    if (!rc && !s->access_key) {
        if (u)
            snprintf(u->err, sizeof(u->err), "no credentials yet");
        rc = VG_EAUTH;
    }
    if (!rc) {
        cc->ak = vg_strdup(s->access_key);
        cc->sk = vg_strdup(s->secret_key);
        cc->tok = vg_strdup(s->session_token);
        if (!cc->ak || !cc->sk || (s->session_token && !cc->tok))
            rc = VG_ENOMEM;
    }
    pthread_mutex_unlock(&s->cred_mu);
    if (rc)
        creds_copy_free(cc);
    return rc;
}

static void fill_creds(struct s3 *s, const struct creds_copy *cc, struct vg_sigv4_creds *cr)
{
    cr->access_key_id = cc->ak;
    cr->secret_access_key = cc->sk;
    cr->session_token = cc->tok;
    cr->region = s->region;
    cr->service = "s3";
}

/* Signs and sends one request; the response goes to r. */
static int s3_send(struct s3 *s, struct vg__upload *u, struct vg__call *c,
                   struct vg__client_resp *r)
{
    char payload[65];
    int rc = 0;
    if (c->fd >= 0) {
        if ((rc = vg__file_sha256_hex(c->fd, c->off, c->len, payload))) {
            snprintf(u->err, sizeof(u->err), "reading %s: %s", u->spool_path, vg_strerror(rc));
            return VG_EFATAL;
        }
    } else {
        vg_sha256_hex(c->mem ? c->mem : "", c->mem_len, payload);
    }
    char *path = object_path(s, u);
    struct vg_sigv4_request q = {.method = c->method,
                                 .host = s->host,
                                 .path = path,
                                 .query = c->query,
                                 .headers = c->hdr,
                                 .n_headers = c->n_hdr,
                                 .payload_sha256 = payload,
                                 .s3 = true};
    struct vg_sigv4_creds cr;
    struct creds_copy cc = {0};
    struct vg_sigv4_result res;
    memset(&res, 0, sizeof(res));
    char *url = NULL;
    if (!path) {
        rc = VG_ENOMEM;
        goto out;
    }
    if ((rc = creds_get(s, u, &cc)))
        goto out;
    fill_creds(s, &cc, &cr);
    if ((rc = vg_sigv4_sign(&q, &cr, time(NULL), &res))) {
        snprintf(u->err, sizeof(u->err), "signing the request failed: %s", vg_strerror(rc));
        rc = VG_EFATAL;
        goto out;
    }
    url = vg_asprintf("%s://%s%s%s%s", s->ep.scheme, s->host, res.canonical_uri,
                      res.canonical_query && *res.canonical_query ? "?" : "",
                      res.canonical_query ? res.canonical_query : "");
    const struct vg_http_header own[] = {
        {"Authorization", res.authorization},
        {"X-Amz-Date", res.amz_date},
        {"x-amz-content-sha256", payload},
        {"x-amz-security-token", cc.tok},
    };
    rc = url ? vg__client_send(u, c, url, url, own, VG_ARRAY_SIZE(own), r) : VG_ENOMEM;
out:
    free(url);
    free(path);
    creds_copy_free(&cc);
    vg_sigv4_result_free(&res);
    return rc;
}

/* S3's error codes over the generic verdict. (A 200 with an error body, which
 * CompleteMultipartUpload may send, is handled where that call is made.) */
static int s3_classify(const struct vg__client_resp *r, const char *code, int verdict)
{
    if (!code)
        return verdict;
    if (!strcmp(code, "RequestTimeout") || !strcmp(code, "SlowDown") ||
        !strcmp(code, "InternalError"))
        return VG_ERETRY;
    if (!strcmp(code, "NoSuchUpload"))
        return VG_ENOTFOUND;
    return verdict;
}

/* Headers describing the object: type, metadata, storage class, encryption. */
static int object_headers(struct s3 *s, struct vg__upload *u, struct vg__call *c,
                          struct vg_buf *names)
{
    vg__call_header(c, "Content-Type", u->content_type);
    vg__call_header(c, "x-amz-storage-class", s->storage_class);
    if (s->kms) {
        vg__call_header(c, "x-amz-server-side-encryption", "aws:kms");
        vg__call_header(c, "x-amz-server-side-encryption-aws-kms-key-id", s->kms_key);
    }
    /* Header names must outlive the call: one buffer of NUL-separated names, offsets first. */
    size_t n = u->n_meta + 1;
    size_t offs[64];
    if (n > VG_ARRAY_SIZE(offs))
        n = VG_ARRAY_SIZE(offs);
    for (size_t i = 0; i < n; i++) {
        offs[i] = names->len;
        const char *k = i < u->n_meta ? u->meta[i].key : "vigilsha256";
        if (vg_buf_printf(names, "x-amz-meta-%s", k) || vg_buf_append(names, "", 1))
            return VG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        vg__call_header(c, names->data + offs[i], i < u->n_meta ? u->meta[i].value : u->sha256);
    return 0;
}

static uint64_t s3_chunk_size(void *state, const struct vg__upload *u)
{
    struct s3 *s = state;
    uint64_t ps = s->part_size;
    /* S3 allows 10000 parts: grow the part size (in MiB steps) for huge artifacts. */
    if (u->size / ps >= MAX_PARTS)
        ps = ((u->size / (MAX_PARTS - 1)) / MIB + 1) * MIB;
    return ps;
}

static int s3_begin(void *state, struct vg__upload *u)
{
    struct s3 *s = state;
    u->chunked = u->size >= s3_chunk_size(s, u);
    if (!u->chunked)
        return 0;
    if (u->remote_id) {
        if (!u->resumed || u->remote_checked)
            return 0;
        /* A resumed upload may have expired or been aborted (lifecycle rules): ListParts says
         * NoSuchUpload, and the core starts over. Anything else lets the upload go on. */
        char *query = vg_asprintf("uploadId=%s&max-parts=1", u->remote_id);
        struct vg__call lc;
        vg__call_init(&lc, "GET", query);
        struct vg__client_resp lr;
        vg__client_resp_init(&lr);
        int rc = query ? s3_send(s, u, &lc, &lr) : VG_ENOMEM;
        if (!rc)
            rc = vg__client_judge(u, &lr, "ListParts");
        vg__client_resp_free(&lr);
        free(query);
        if (rc == VG_ENOTFOUND || rc == VG_ERETRY || rc == VG_ECANCELED || rc == VG_ENOMEM ||
            rc == VG_EAUTH)
            return rc;
        u->remote_checked = true;
        return 0;
    }
    struct vg__call c;
    vg__call_init(&c, "POST", "uploads");
    struct vg_buf names;
    vg_buf_init(&names);
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    int rc = object_headers(s, u, &c, &names);
    if (!rc)
        rc = s3_send(s, u, &c, &r);
    if (!rc)
        rc = vg__client_judge(u, &r, "CreateMultipartUpload");
    if (!rc) {
        u->remote_id = vg__xml_text(r.body.data, "UploadId");
        if (!u->remote_id || !*u->remote_id) {
            snprintf(u->err, sizeof(u->err), "CreateMultipartUpload: no UploadId in the reply");
            rc = VG_ERETRY;
        }
    }
    vg_buf_free(&names);
    vg__client_resp_free(&r);
    return rc;
}

static int open_spool(struct vg__upload *u, int *fd)
{
    *fd = open(u->spool_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd >= 0)
        return 0;
    snprintf(u->err, sizeof(u->err), "opening %s: %s", u->spool_path, vg_strerror(-errno));
    return VG_EFATAL;
}

static int s3_put_chunk(void *state, struct vg__upload *u, unsigned no, uint64_t off, uint64_t len,
                        char **out_tag)
{
    struct s3 *s = state;
    int fd = -1;
    int rc = open_spool(u, &fd);
    if (rc)
        return rc;
    char *query = vg_asprintf("partNumber=%u&uploadId=%s", no, u->remote_id);
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    struct vg__call c;
    vg__call_init(&c, "PUT", query);
    c.fd = fd;
    c.off = off;
    c.len = len;
    rc = query ? s3_send(s, u, &c, &r) : VG_ENOMEM;
    if (!rc)
        rc = vg__client_judge(u, &r, "UploadPart");
    if (!rc) {
        *out_tag = vg__client_header(&r, "ETag");
        if (!*out_tag) {
            snprintf(u->err, sizeof(u->err), "UploadPart %u: no ETag in the reply", no);
            rc = VG_ERETRY;
        }
    }
    vg__client_resp_free(&r);
    free(query);
    close(fd);
    return rc;
}

/* HEAD the object: is it there with our size and checksum? */
static int s3_probe(void *state, struct vg__upload *u, bool *complete)
{
    struct s3 *s = state;
    *complete = false;
    struct vg__call c;
    vg__call_init(&c, "HEAD", NULL);
    c.head = true;
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    int rc = s3_send(s, u, &c, &r);
    if (!rc && r.status == 404 && !r.curl_code)
        goto out;
    if (!rc)
        rc = vg__client_judge(u, &r, "HeadObject");
    if (!rc)
        *complete = vg__client_object_complete(&r, u, "x-amz-meta-vigilsha256");
out:
    vg__client_resp_free(&r);
    return rc;
}

static int s3_finish(void *state, struct vg__upload *u)
{
    struct s3 *s = state;
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    struct vg_buf body, names;
    vg_buf_init(&body);
    vg_buf_init(&names);
    char *query = NULL;
    int fd = -1;
    int rc = 0;
    struct vg__call c;
    if (u->chunked) {
        query = vg_asprintf("uploadId=%s", u->remote_id);
        rc = query ? vg_buf_puts(&body, "<CompleteMultipartUpload>") : VG_ENOMEM;
        for (size_t i = 0; i < u->n_parts && !rc; i++)
            rc = vg_buf_printf(&body, "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>",
                               u->parts[i].no, u->parts[i].tag);
        if (!rc)
            rc = vg_buf_puts(&body, "</CompleteMultipartUpload>");
        if (rc)
            goto out;
        vg__call_init(&c, "POST", query);
        vg__call_header(&c, "Content-Type", "application/xml");
        c.mem = body.data;
        c.mem_len = body.len;
        if ((rc = s3_send(s, u, &c, &r)) ||
            (rc = vg__client_judge(u, &r, "CompleteMultipartUpload")))
            goto out;
        /* S3 may answer 200 and put the error in the body. */
        char *code = vg__xml_text(r.body.data, "Code");
        if (code && r.body.data && strstr(r.body.data, "<Error>")) {
            snprintf(u->err, sizeof(u->err), "CompleteMultipartUpload: %s", code);
            rc = !strcmp(code, "NoSuchUpload") ? VG_ENOTFOUND : VG_ERETRY;
        }
        free(code);
        if (rc)
            goto out;
    } else {
        if ((rc = open_spool(u, &fd)))
            goto out;
        vg__call_init(&c, "PUT", NULL);
        c.fd = fd;
        c.len = u->size;
        if ((rc = object_headers(s, u, &c, &names)) || (rc = s3_send(s, u, &c, &r)) ||
            (rc = vg__client_judge(u, &r, "PutObject")))
            goto out;
    }
    /* Never report success for an object that is not all there. */
    bool complete = false;
    if ((rc = s3_probe(s, u, &complete)))
        goto out;
    if (!complete) {
        snprintf(u->err, sizeof(u->err),
                 "the stored object does not have the expected size %llu and checksum",
                 (unsigned long long)u->size);
        rc = VG_ERETRY;
    }
out:
    if (fd >= 0)
        close(fd);
    free(query);
    vg_buf_free(&body);
    vg_buf_free(&names);
    vg__client_resp_free(&r);
    return rc;
}

static void s3_abort(void *state, struct vg__upload *u)
{
    struct s3 *s = state;
    if (!u->remote_id)
        return;
    char *query = vg_asprintf("uploadId=%s", u->remote_id);
    if (!query)
        return;
    struct vg__call c;
    vg__call_init(&c, "DELETE", query);
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    char saved[sizeof(u->err)];
    memcpy(saved, u->err, sizeof(saved));
    /* NoSuchUpload: already completed or aborted, nothing to say. */
    int rc = s3_send(s, u, &c, &r);
    if (!rc && (rc = vg__client_judge(u, &r, "AbortMultipartUpload")) && rc != VG_ENOTFOUND)
        vg_log(VG_LOG_WARN, u->prov->component, "%s: %s", u->name, u->err);
    memcpy(u->err, saved, sizeof(saved));
    vg__client_resp_free(&r);
    free(query);
}

static int s3_remove(void *state, struct vg__upload *u)
{
    struct s3 *s = state;
    struct vg__call c;
    vg__call_init(&c, "DELETE", NULL);
    struct vg__client_resp r;
    vg__client_resp_init(&r);
    int rc = s3_send(s, u, &c, &r);
    if (!rc && !(r.status == 404 && !r.curl_code))
        rc = vg__client_judge(u, &r, "DeleteObject");
    vg__client_resp_free(&r);
    return rc;
}

static int s3_egress_path(void *state, const struct vg__upload *u, char **out)
{
    struct s3 *s = state;
    const char *sep = s->key_prefix[0] ? "/" : "";
    if (!s->presign_s) {
        *out = vg_asprintf("s3://%s/%s%s%s", s->bucket, s->key_prefix, sep, u->name);
        return *out ? 0 : VG_ENOMEM;
    }
    char *path = object_path(s, u);
    if (!path)
        return VG_ENOMEM;
    struct vg_sigv4_request q = {.method = "GET",
                                 .host = s->host,
                                 .path = path,
                                 .payload_sha256 = "UNSIGNED-PAYLOAD",
                                 .s3 = true};
    struct vg_sigv4_creds cr;
    struct creds_copy cc;
    int rc = creds_get(s, NULL, &cc);
    if (!rc) {
        fill_creds(s, &cc, &cr);
        rc = vg_sigv4_presign_url(s->ep.scheme, &q, &cr, time(NULL), s->presign_s, out);
        creds_copy_free(&cc);
    }
    free(path);
    return rc;
}

const struct vg_egress_provider_type vg__egress_s3 = {
    .type_name = "S3Storage",
    .kind = VG_EGRESS_S3,
    .spools = true,
    .create = s3_create,
    .destroy = s3_destroy,
    .chunk_size = s3_chunk_size,
    .begin = s3_begin,
    .put_chunk = s3_put_chunk,
    .finish = s3_finish,
    .probe = s3_probe,
    .abort = s3_abort,
    .remove = s3_remove,
    .egress_path = s3_egress_path,
    .classify = s3_classify,
};
