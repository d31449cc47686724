/* AWS Signature Version 4 request signing (header and query-string forms), as pure functions
 * over OpenSSL libcrypto. No I/O, no clock: the caller passes the time so tests can pin it.
 * Nothing here logs; canonical requests and signatures must never reach a log either. */
#ifndef VG_SIGV4_H
#define VG_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config/util.h"

/* SHA-256 of the empty string: the payload hash of a request without a body. */
#define VG_SHA256_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define VG_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define VG_SIGV4_MAX_EXPIRES 604800u /* 7 days: the SigV4 presign limit */

struct vg_http_header {
    const char *name;
    const char *value;
};

struct vg_sigv4_creds {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL when none; when set, X-Amz-Security-Token is signed */
    const char *region;        /* e.g. "us-east-1" */
    const char *service;       /* "s3" */
};

struct vg_sigv4_request {
    const char *method; /* "PUT" */
    const char *host;   /* host header value, incl. ":port" when non-default */
    /* The request path, NOT yet URI-encoded, e.g. "/bucket/my key ü.core" (see path_is_encoded). */
    const char *path;
    /* Raw query string without '?', components possibly unencoded, or NULL. Each name and value
     * is percent-decoded (%XX only; '+' is a literal plus) and then re-encoded, so already
     * encoded and unencoded input give the same canonical query. A name without '=' gets an
     * empty value ("uploads" -> "uploads="). */
    const char *query;
    const struct vg_http_header *headers; /* extra headers to sign (any case) */
    size_t n_headers;
    const char *payload_sha256; /* lowercase hex, or "UNSIGNED-PAYLOAD" */
    /* S3 rules: path segments encoded once, no path normalization, x-amz-content-sha256 signed
     * (header form). Otherwise the generic SigV4 rules: dot segments and empty segments are
     * removed and the (wire) path is encoded a second time for the canonical request. */
    bool s3;
    /* Added: path is already the wire form (percent-encoded by the caller) and is sent as is.
     * S3 mode signs it verbatim; generic mode encodes it once more for the canonical request. */
    bool path_is_encoded;
};

struct vg_sigv4_result {
    char *authorization;     /* value of the Authorization header (NULL for presigning) */
    char *amz_date;          /* X-Amz-Date value used, "20150830T123600Z" */
    char *canonical_request; /* for tests/debug — never logged */
    char *string_to_sign;
    char signature[65];
    char *canonical_uri;   /* the encoded path to put on the wire (so wire and signature agree) */
    char *canonical_query; /* the encoded, sorted query to put on the wire ("" when none);
                            * for presigning it holds the X-Amz-* parameters but not
                            * X-Amz-Signature */
    char *signed_headers;  /* "host;x-amz-content-sha256;x-amz-date" */
};

/* Header-based signing. The caller sends, besides its own headers: Host (req->host),
 * X-Amz-Date (out->amz_date), Authorization (out->authorization), in S3 mode
 * x-amz-content-sha256 (req->payload_sha256), and X-Amz-Security-Token when a session token is
 * set. Those generated headers may also appear in req->headers with the same value; a different
 * value is VG_EINVAL. Duplicate header names are signed as one comma-joined value, in order.
 * now_epoch: seconds since epoch (inject a clock in tests). Returns 0 or VG_E*; on error *out
 * is left empty (safe to free). */
int vg_sigv4_sign(const struct vg_sigv4_request *req, const struct vg_sigv4_creds *creds,
                  time_t now_epoch, struct vg_sigv4_result *out);
/* Frees the strings of a result (not the struct itself); NULL-safe, idempotent. */
void vg_sigv4_result_free(struct vg_sigv4_result *r);

/* Query-string presigning (GET object URL), expires in seconds (1..604800). Returns a malloc'd
 * full URL "scheme://host/path?query&X-Amz-Signature=..." given scheme ("https"). The headers
 * in req->headers are signed and must be sent with the URL; the session token, when set, goes
 * into the query (X-Amz-Security-Token) and is signed, as S3 requires. For S3 pass
 * payload_sha256 = "UNSIGNED-PAYLOAD". */
int vg_sigv4_presign_url(const char *scheme, const struct vg_sigv4_request *req,
                         const struct vg_sigv4_creds *creds, time_t now_epoch, unsigned expires,
                         char **out_url);
/* Added: the presigning steps with every intermediate exposed (for tests and for callers that
 * assemble the URL themselves: canonical_query + "&X-Amz-Signature=" + signature). */
int vg_sigv4_presign(const struct vg_sigv4_request *req, const struct vg_sigv4_creds *creds,
                     time_t now_epoch, unsigned expires, struct vg_sigv4_result *out);

/* Helpers the providers use: */
void vg_sha256_hex(const void *data, size_t len, char out[65]);

#endif
