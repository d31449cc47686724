/* libcurl, loaded on first use. Linking it loads its whole dependency closure at exec (Debian's
 * libcurl brings GnuTLS through libldap and librtmp, krb5, p11-kit, nettle...): about 4 MB of RSS,
 * plus GnuTLS's load-time initialization, in a daemon that may never upload over HTTP. vigil calls
 * only the vg__curl_* functions below (named so: they never shadow libcurl's own symbols); the
 * first call of any of them dlopen()s libcurl.so.4 (vg__curl_global_init only records its flags:
 * the real one runs right after the load, under the same pthread_once, so still once and before
 * any handle exists). */
#include "egress/curl_lazy.h"

#include "config/log.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>

static struct {
    CURLcode (*global_init)(long);
    void (*global_cleanup)(void);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    void (*easy_cleanup)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_reset)(CURL *);
    const char *(*easy_strerror)(CURLcode);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    time_t (*getdate)(const char *, const time_t *);
} fn;
static bool loaded;
static long init_flags = CURL_GLOBAL_DEFAULT;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        vg_log(VG_LOG_ERROR, "egress:curl", "cannot load libcurl: %s", dlerror());
        return;
    }
    const struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"curl_global_init", (void **)&fn.global_init},
        {"curl_global_cleanup", (void **)&fn.global_cleanup},
        {"curl_easy_init", (void **)&fn.easy_init},
        {"curl_easy_setopt", (void **)&fn.easy_setopt},
        {"curl_easy_perform", (void **)&fn.easy_perform},
        {"curl_easy_cleanup", (void **)&fn.easy_cleanup},
        {"curl_easy_getinfo", (void **)&fn.easy_getinfo},
        {"curl_easy_reset", (void **)&fn.easy_reset},
        {"curl_easy_strerror", (void **)&fn.easy_strerror},
        {"curl_slist_append", (void **)&fn.slist_append},
        {"curl_slist_free_all", (void **)&fn.slist_free_all},
        {"curl_getdate", (void **)&fn.getdate},
    };
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
            vg_log(VG_LOG_ERROR, "egress:curl", "libcurl.so.4 has no %s", syms[i].name);
            return;
        }
    }
    CURLcode rc = fn.global_init(init_flags);
    if (rc != CURLE_OK) {
        vg_log(VG_LOG_ERROR, "egress:curl", "curl_global_init: %s", fn.easy_strerror(rc));
        return;
    }
    loaded = true;
}

static bool ready(void)
{
    pthread_once(&once, load);
    return loaded;
}

/* Called by vg_egress_create whether or not any HTTP egress will ever be used. */
CURLcode vg__curl_global_init(long flags)
{
    init_flags = flags;
    return CURLE_OK;
}

void vg__curl_global_cleanup(void)
{
    if (loaded)
        fn.global_cleanup();
}

CURL *vg__curl_easy_init(void)
{
    return ready() ? fn.easy_init() : NULL;
}

/* Passed on with the type its option number says. */
CURLcode vg__curl_easy_setopt(CURL *c, CURLoption opt, ...)
{
    if (!ready())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, opt);
    CURLcode rc;
    if (opt < CURLOPTTYPE_OBJECTPOINT)
        rc = fn.easy_setopt(c, opt, va_arg(ap, long));
    else if (opt >= CURLOPTTYPE_FUNCTIONPOINT && opt < CURLOPTTYPE_OFF_T)
        rc = fn.easy_setopt(c, opt, va_arg(ap, void (*)(void)));
    else if (opt >= CURLOPTTYPE_OFF_T && opt < CURLOPTTYPE_BLOB)
        rc = fn.easy_setopt(c, opt, va_arg(ap, curl_off_t));
    else
        rc = fn.easy_setopt(c, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLcode vg__curl_easy_perform(CURL *c)
{
    return ready() ? fn.easy_perform(c) : CURLE_FAILED_INIT;
}

void vg__curl_easy_cleanup(CURL *c)
{
    if (c && ready())
        fn.easy_cleanup(c);
}

CURLcode vg__curl_easy_getinfo(CURL *c, CURLINFO info, ...)
{
    if (!ready())
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    CURLcode rc = fn.easy_getinfo(c, info, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

void vg__curl_easy_reset(CURL *c)
{
    if (ready())
        fn.easy_reset(c);
}

const char *vg__curl_easy_strerror(CURLcode code)
{
    return ready() ? fn.easy_strerror(code) : "libcurl could not be loaded";
}

struct curl_slist *vg__curl_slist_append(struct curl_slist *l, const char *s)
{
    return ready() ? fn.slist_append(l, s) : NULL;
}

void vg__curl_slist_free_all(struct curl_slist *l)
{
    if (l && ready())
        fn.slist_free_all(l);
}

time_t vg__curl_getdate(const char *p, const time_t *unused)
{
    return ready() ? fn.getdate(p, unused) : -1;
}
