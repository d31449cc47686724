/* libFuzzer target for the request signers: path/query/header canonicalization must never
 * crash, leak or read out of bounds, whatever bytes a key name or query carries. Input: up to
 * six NUL-separated fields (path, query, header name, header value, mode byte, azure query). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "egress/azure_sign.h"
#include "egress/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *f[6] = {"/", "", "x-amz-meta-a", "v", "", ""};
    size_t nf = 0;
    char *p = buf;
    while (nf < 6) {
        f[nf++] = p;
        size_t l = strlen(p);
        if (p + l >= buf + size)
            break;
        p += l + 1;
    }
    unsigned mode = f[4][0];
    struct vg_http_header h[] = {{f[2], f[3]}, {"Content-Type", f[3]}};
    struct vg_sigv4_creds creds = {
        .access_key_id = "AKIDEXAMPLE",
        .secret_access_key = "secret",
        .session_token = (mode & 4) ? f[3] : NULL,
        .region = "us-east-1",
        .service = "s3",
    };
    struct vg_sigv4_request req = {
        .method = "PUT",
        .host = "h:9000",
        .path = f[0],
        .query = f[1],
        .headers = h,
        .n_headers = 2,
        .payload_sha256 = VG_SIGV4_UNSIGNED_PAYLOAD,
        .s3 = mode & 1,
        .path_is_encoded = mode & 2,
    };
    struct vg_sigv4_result r;
    if (vg_sigv4_sign(&req, &creds, 1795309323, &r) == 0)
        vg_sigv4_result_free(&r);
    char *url = NULL;
    if (vg_sigv4_presign_url("https", &req, &creds, 1795309323, 60, &url) == 0)
        free(url);

    struct vg_azure_sign_request az = {
        .method = "PUT",
        .account = "devstoreaccount1",
        .path = f[0],
        .query = f[5],
        .headers = h,
        .n_headers = 2,
        .path_style = mode & 8,
    };
    char *auth = NULL, *sts = NULL;
    if (vg_azure_shared_key_sign(&az, "c2VjcmV0", &auth, &sts) == 0) {
        free(auth);
        free(sts);
    }
    struct vg_buf b;
    vg_buf_init(&b);
    vg_base64_decode(f[1], &b);
    vg_buf_free(&b);
    free(buf);
    return 0;
}
