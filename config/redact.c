#include "config/redact.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *values[VG_REDACT_MAX];
static size_t n_values;
static atomic_bool active;

static void add(const char *secret, size_t len);

/* A URL's host is quoted alone by the messages about it ("Could not resolve host: H"). */
static void add_url_host(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return;
    p += 3;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n); /* user:password@ */
    if (at) {
        add(p, (size_t)(at - p));
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    add(p, n);
    const char *colon = p[0] == '[' ? memchr(p, ']', n) : memchr(p, ':', n);
    if (colon)
        add(p, (size_t)(colon - p) + (p[0] == '['));
}

void vg_redact_add(const char *secret)
{
    if (!secret)
        return;
    add(secret, strlen(secret));
    add_url_host(secret);
}

static void add(const char *secret, size_t len)
{
    if (len < VG_REDACT_MIN_LEN)
        return;
    char *copy = strndup(secret, len);
    if (!copy)
        return;
    pthread_mutex_lock(&lock);
    bool known = false;
    for (size_t i = 0; i < n_values && !known; i++)
        known = strcmp(values[i], copy) == 0;
    if (!known && n_values < VG_REDACT_MAX) {
        /* longest first: a value holding another is replaced whole */
        size_t at = n_values;
        while (at > 0 && strlen(values[at - 1]) < len) {
            values[at] = values[at - 1];
            at--;
        }
        values[at] = copy;
        n_values++;
        copy = NULL;
        atomic_store(&active, true);
    }
    pthread_mutex_unlock(&lock);
    free(copy);
}

bool vg_redact_active(void)
{
    return atomic_load(&active);
}

bool vg_redact(char *s)
{
    if (!s || !atomic_load(&active))
        return false;
    bool any = false;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_values; i++) {
        size_t len = strlen(values[i]);
        char *p;
        while ((p = strstr(s, values[i]))) {
            memcpy(p, "***", 3);
            memmove(p + 3, p + len, strlen(p + len) + 1);
            any = true;
        }
    }
    pthread_mutex_unlock(&lock);
    return any;
}

void vg_redact_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_values; i++)
        free(values[i]);
    n_values = 0;
    atomic_store(&active, false);
    pthread_mutex_unlock(&lock);
}
