/* Live check of the Shared Key signer against Azurite: usage azurite_sign_check <blob-endpoint>
 * e.g. http://127.0.0.1:10999/devstoreaccount1. Signs each request with
 * vg_azure_shared_key_sign, sends it with libcurl and expects the documented status: 201 for
 * container/blob/block creation, 200/206 for reads, and 403 for a request signed with a
 * wrong key (so a server that skips authentication fails the check too). */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config/util.h"
#include "egress/azure_sign.h"

#define ACCOUNT "devstoreaccount1"
#define KEY                                                                                        \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define WRONG_KEY                                                                                  \
    "AAAAvdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

static const char *g_base; /* scheme://host:port */
static int g_failures;

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    struct vg_buf *b = ud;
    return vg_buf_append(b, p, s * n) == 0 ? s * n : 0;
}

/* path includes the account segment (path-style); body may be NULL. */
static long do_request(const char *method, const char *path, const char *query, const char *body,
                       const struct vg_http_header *extra, size_t n_extra, const char *key,
                       struct vg_buf *resp)
{
    char date[32];
    vg_rfc1123_date(time(NULL), date);
    char clen[32];
    snprintf(clen, sizeof(clen), "%zu", body ? strlen(body) : 0);
    struct vg_http_header h[16];
    size_t n = 0;
    h[n++] = (struct vg_http_header){"x-ms-date", date};
    h[n++] = (struct vg_http_header){"x-ms-version", "2021-08-06"};
    h[n++] = (struct vg_http_header){"Content-Length", clen};
    for (size_t i = 0; i < n_extra && n < 16; i++)
        h[n++] = extra[i];
    struct vg_azure_sign_request req = {
        .method = method,
        .account = ACCOUNT,
        .path = path,
        .query = query,
        .headers = h,
        .n_headers = n,
        .path_style = true,
    };
    char *auth = NULL;
    if (vg_azure_shared_key_sign(&req, key, &auth, NULL) != 0) {
        fprintf(stderr, "sign failed\n");
        return -1;
    }
    CURL *c = curl_easy_init();
    struct curl_slist *sl = NULL;
    for (size_t i = 0; i < n; i++) {
        char *line = vg_asprintf("%s: %s", h[i].name, h[i].value);
        sl = curl_slist_append(sl, line);
        free(line);
    }
    char *al = vg_asprintf("Authorization: %s", auth);
    sl = curl_slist_append(sl, al);
    sl = curl_slist_append(sl, "Expect:");
    bool has_ctype = false;
    for (size_t i = 0; i < n_extra; i++)
        has_ctype |= strcasecmp(extra[i].name, "Content-Type") == 0;
    if (!has_ctype) /* else curl adds a form Content-Type to a body the signature never saw */
        sl = curl_slist_append(sl, "Content-Type:");
    char *url = vg_asprintf("%s%s%s%s", g_base, path, query ? "?" : "", query ? query : "");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    long status = -1;
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "curl: %s\n", curl_easy_strerror(cc));
    curl_slist_free_all(sl);
    curl_easy_cleanup(c);
    free(url);
    free(al);
    free(auth);
    return status;
}

static void expect(const char *what, long got, long want, struct vg_buf *resp)
{
    if (got != want) {
        fprintf(stderr, "FAIL %s: HTTP %ld, want %ld\n%s\n", what, got, want,
                resp->data ? resp->data : "");
        g_failures++;
    } else {
        printf("ok   %s: HTTP %ld\n", what, got);
    }
    vg_buf_reset(resp);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s http://127.0.0.1:PORT\n", argv[0]);
        return 2;
    }
    g_base = argv[1];
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct vg_buf resp;
    vg_buf_init(&resp);
    char cname[64];
    /* the fixture's Azurite is shared by the suite: a name of this run's own */
    snprintf(cname, sizeof(cname), "vigil-sign-%ld-%ld", (long)time(NULL) % 100000, (long)getpid());
    char *cpath = vg_asprintf("/" ACCOUNT "/%s", cname);
    /* A blob name with spaces, '+', unicode and a sub-folder, encoded as it goes on the wire. */
    char *bpath = vg_asprintf("%s/dumps/my%%20key%%2B%%C3%%BC.core", cpath);

    expect("create container (wrong key)",
           do_request("PUT", cpath, "restype=container", NULL, NULL, 0, WRONG_KEY, &resp), 403,
           &resp);
    expect("create container",
           do_request("PUT", cpath, "restype=container", NULL, NULL, 0, KEY, &resp), 201, &resp);
    const struct vg_http_header put_h[] = {
        {"x-ms-blob-type", "BlockBlob"},
        {"Content-Type", "application/octet-stream"},
        {"x-ms-meta-Host", "web-1"},
        {"X-MS-Client-Request-Id", "vigil-check-1"},
    };
    expect("put blob", do_request("PUT", bpath, NULL, "hello core dump", put_h, 4, KEY, &resp), 201,
           &resp);
    expect("put block (query with encoded '=')",
           do_request("PUT", bpath, "comp=block&blockid=YmxvY2stMDAwMDE%3D", "block-1", NULL, 0,
                      KEY, &resp),
           201, &resp);
    const struct vg_http_header range_h[] = {{"Range", "bytes=0-4"}};
    long st = do_request("GET", bpath, NULL, NULL, range_h, 1, KEY, &resp);
    if (st == 206 && strcmp(resp.data ? resp.data : "", "hello") != 0) {
        fprintf(stderr, "FAIL range body: %s\n", resp.data ? resp.data : "");
        g_failures++;
    }
    expect("get blob with Range", st, 206, &resp);
    expect("list blobs (several query params)",
           do_request("GET", cpath, "restype=container&comp=list&prefix=dumps%2F&include=metadata",
                      NULL, NULL, 0, KEY, &resp),
           200, &resp);
    expect("delete container",
           do_request("DELETE", cpath, "restype=container", NULL, NULL, 0, KEY, &resp), 202, &resp);
    vg_buf_free(&resp);
    free(cpath);
    free(bpath);
    curl_global_cleanup();
    printf("%s\n", g_failures ? "FAILED" : "all requests accepted");
    return g_failures ? 1 : 0;
}
