/* Azure Storage Shared Key authorization (Blob service, version 2009-09-19 and later string to
 * sign), plus the base64 and RFC 1123 date helpers the Azure provider needs. Pure functions;
 * nothing here logs (keys and signatures are secrets). */
#ifndef VG_AZURE_SIGN_H
#define VG_AZURE_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config/util.h"
#include "egress/sigv4.h" /* struct vg_http_header */

struct vg_azure_sign_request {
    const char *method;
    const char *account;
    /* URL path as sent (already encoded), incl. the account segment for path-style. */
    const char *path;
    const char *query; /* as sent, or NULL */
    /* All request headers incl. x-ms-date, x-ms-version, Content-Length, Content-Type. Send
     * x-ms-date and no Date header: a Date header, when present, is signed as given. */
    const struct vg_http_header *headers;
    size_t n_headers;
    /* Emulator/path-style (http://127.0.0.1:10000/devstoreaccount1/container/blob): the account
     * is also the first path segment. The canonical resource is "/" account path either way
     * ("/devstoreaccount1/devstoreaccount1/container/blob", which is what Azurite verifies);
     * the flag only makes the signer check that path really starts with "/account". */
    bool path_style;
};

/* account_key_b64: the base64 account key. Writes "SharedKey account:signature" into *out_auth
 * (malloc'd) and, when out_string_to_sign is not NULL, the string that was signed (malloc'd;
 * for tests — never log it next to the signature). Returns 0 or VG_E* (VG_EINVAL for a key
 * that is not base64, a missing field, or a path-style path without the account segment). */
int vg_azure_shared_key_sign(const struct vg_azure_sign_request *req, const char *account_key_b64,
                             char **out_auth, char **out_string_to_sign);

/* Standard base64 with padding. Both append to out. Decoding rejects anything but the
 * standard alphabet and '=' padding (length must be a multiple of 4): VG_EINVAL. */
int vg_base64_encode(const void *data, size_t len, struct vg_buf *out);
int vg_base64_decode(const char *b64, struct vg_buf *out);

/* RFC 1123 date in GMT, independent of the locale: "Sun, 22 Nov 2026 01:02:03 GMT". */
void vg_rfc1123_date(time_t t, char out[32]);

#endif
