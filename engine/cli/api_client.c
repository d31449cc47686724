/* The small HTTP client `vigil status` and `vigil ps` share: GET a route of the daemon's API with
 * the key from --api-key-file or VIGIL_API_KEY, parse the JSON answer. */
#include "config/defaults.h"
#include "config/error.h"
#include "config/util.h"
#include "engine/cli/cli.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_URL VG_DEFAULT_URL

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    struct vg_buf *b = ud;
    if (b->len + size * n > (64u << 20))
        return 0; /* refuse absurd answers */
    return vg_buf_append(b, p, size * n) ? 0 : size * n;
}

/* A terminal-safe copy of s (control characters become '?'); process names are chosen by the
 * processes themselves. Returns buf. */
const char *vg__cli_printable(const char *s, char *buf, size_t n)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < n; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

static int read_key_file(const char *path, char *key, size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t got = fread(key, 1, n - 1, f);
    fclose(f);
    key[got] = '\0';
    while (got && (key[got - 1] == '\n' || key[got - 1] == '\r' || key[got - 1] == ' '))
        key[--got] = '\0';
    return 0;
}

/* GETs base+route; on success *out is the parsed JSON. Prints its own errors. */
int vg__cli_api_get(const char *base, const char *key, const char *route, json_t **out)
{
    struct vg_buf body;
    vg_buf_init(&body);
    char *url = vg_asprintf("%s%s", base, route);
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    int rc = 1;
    if (!c || !url)
        goto out;
    if (key && *key) {
        char *h = vg_asprintf("Authorization: Bearer %s", key);
        hdr = curl_slist_append(hdr, h);
        free(h);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fprintf(stderr, "vigil: cannot reach %s: %s\n", base, curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    json_error_t je;
    json_t *j = json_loadb(body.data ? body.data : "", body.len, 0, &je);
    if (status != 200) {
        const char *detail = j ? json_string_value(json_object_get(j, "detail")) : NULL;
        fprintf(stderr, "vigil: %s: HTTP %ld%s%s\n", route, status, detail ? ": " : "",
                detail ? detail : "");
        json_decref(j);
        goto out;
    }
    if (!j) {
        fprintf(stderr, "vigil: %s: the answer is not JSON: %s\n", route, je.text);
        goto out;
    }
    *out = j;
    rc = 0;
out:
    curl_slist_free_all(hdr);
    if (c)
        curl_easy_cleanup(c);
    free(url);
    vg_buf_free(&body);
    return rc;
}

int vg__cli_parse_common(int argc, char **argv, const char *usage, const char **url, char *key,
                         size_t keylen)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"api-key-file", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *url = DEFAULT_URL;
    key[0] = '\0';
    const char *env = getenv("VIGIL_API_KEY");
    if (env)
        snprintf(key, keylen, "%s", env);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "u:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            *url = optarg;
            break;
        case 'k':
            if (read_key_file(optarg, key, keylen) != 0) {
                fprintf(stderr, "vigil: cannot read %s\n", optarg);
                return 1;
            }
            break;
        case 'h':
            printf("%s", usage);
            return -1;
        default:
            fprintf(stderr, "%s", usage);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s", usage);
        return 2;
    }
    return 0;
}
