/* vigil status / vigil ps: small API clients for people at a terminal. */
#include "config/error.h"
#include "config/util.h"
#include "engine/cli.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_URL "http://127.0.0.1:52323"

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    struct vg_buf *b = ud;
    if (b->len + size * n > (64u << 20))
        return 0; /* refuse absurd answers */
    return vg_buf_append(b, p, size * n) ? 0 : size * n;
}

/* A terminal-safe copy of s (control characters become '?'); process names are chosen by the
 * processes themselves. Returns buf. */
static const char *printable(const char *s, char *buf, size_t n)
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
static int api_get(const char *base, const char *key, const char *route, json_t **out)
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

static int parse_common(int argc, char **argv, const char *usage, const char **url, char *key,
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

int vg_cmd_ps(int argc, char **argv)
{
    static const char usage[] = "usage: vigil ps [--url URL] [--api-key-file FILE]\n"
                                "  Lists the processes the daemon sees (key: --api-key-file or "
                                "VIGIL_API_KEY).\n";
    const char *url;
    char key[256];
    int rc = parse_common(argc, argv, usage, &url, key, sizeof(key));
    if (rc)
        return rc < 0 ? 0 : rc;
    json_t *j;
    if (api_get(url, key, "/processes", &j))
        return 1;
    printf("%8s  %-20s  %s\n", "PID", "NAME", "UID");
    size_t i;
    json_t *p;
    json_array_foreach(j, i, p)
    {
        char name[128];
        printf("%8lld  %-20s  %s\n", (long long)json_integer_value(json_object_get(p, "pid")),
               printable(json_string_value(json_object_get(p, "name")), name, sizeof(name)),
               json_string_value(json_object_get(p, "uid")));
    }
    json_decref(j);
    return 0;
}

int vg_cmd_status(int argc, char **argv)
{
    static const char usage[] =
        "usage: vigil status [--url URL] [--api-key-file FILE]\n"
        "  Prints every rule's state for each process it applies to (key: --api-key-file or "
        "VIGIL_API_KEY).\n";
    const char *url;
    char key[256];
    int rc = parse_common(argc, argv, usage, &url, key, sizeof(key));
    if (rc)
        return rc < 0 ? 0 : rc;
    json_t *j;
    if (api_get(url, key, "/instances", &j))
        return 1;
    json_t *arr = json_object_get(j, "instances");
    printf("%-24s %8s  %-16s %-16s %5s  %s\n", "RULE", "PID", "PROCESS", "STATE", "RUNS",
           "LAST FIRED / ERROR");
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o)
    {
        char name[128], rule[128], errbuf[512];
        const char *err = json_string_value(json_object_get(o, "lastError"));
        if (err)
            err = printable(err, errbuf, sizeof(errbuf));
        const char *last = json_string_value(json_object_get(o, "lastFired"));
        printf("%-24s %8lld  %-16s %-16s %5lld  %s\n",
               printable(json_string_value(json_object_get(o, "rule")), rule, sizeof(rule)),
               (long long)json_integer_value(json_object_get(o, "pid")),
               printable(json_string_value(json_object_get(o, "name")), name, sizeof(name)),
               json_string_value(json_object_get(o, "state")),
               (long long)json_integer_value(json_object_get(o, "lifetimeOccurrences")),
               err    ? err
               : last ? last
                      : "-");
    }
    if (json_array_size(arr) == 0)
        printf("(no rule matches any process)\n");
    const char *cfg = json_string_value(json_object_get(j, "configurationErrors"));
    if (cfg)
        printf("\nthe last configuration reload was rejected:\n%s\n", cfg);
    json_decref(j);
    return 0;
}
