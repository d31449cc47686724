/* Listen URLs: dotnet-monitor users write Kestrel's forms (http://+:52323, the same with '*' or
 * [::] as the host, several joined by ';'); vigil binds what they mean. */
#include "config/listen.h"

#include "config/error.h"
#include "config/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void vg_listen_url_free(struct vg_listen_url *u)
{
    if (!u)
        return;
    free((char *)u->text);
    free((char *)u->host);
    free((char *)u->path);
    free((char *)u->canonical);
    memset(u, 0, sizeof(*u));
}

static int fail(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return VG_EINVAL;
}

static int parse_unix(const char *path, struct vg_listen_url *out, char *err, size_t errlen)
{
    if (!*path)
        return fail(err, errlen, "expected a socket path after unix:");
    out->kind = VG_LISTEN_UNIX;
    out->path = vg_strdup(path);
    out->canonical = vg_asprintf("unix:%s", path);
    return out->path && out->canonical ? 0 : VG_ENOMEM;
}

int vg_listen_url_parse(const char *text, struct vg_listen_url *out, char *err, size_t errlen,
                        const char **warning)
{
    memset(out, 0, sizeof(*out));
    *warning = NULL;
    err[0] = '\0';
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1]))
        len--;
    char *s = vg_strndup(text, len);
    int rc = 0;
    if (!s)
        return VG_ENOMEM;
    if (!(out->text = vg_strdup(s))) {
        rc = VG_ENOMEM;
        goto out;
    }
    if (strncasecmp(s, "unix:", 5) == 0) {
        rc = parse_unix(s + 5, out, err, errlen);
        goto out;
    }
    if (strncasecmp(s, "https://", 8) == 0) {
        rc = fail(err, errlen,
                  "https is not served by vigil: listen on http:// and terminate TLS in front "
                  "of it (a sidecar or ingress proxy)");
        goto out;
    }
    if (strncasecmp(s, "http://", 7) != 0) {
        rc = fail(err, errlen, "expected http://HOST:PORT or unix:/path");
        goto out;
    }
    const char *p = s + 7;
    if (strncasecmp(p, "unix:", 5) == 0) { /* Kestrel's http://unix:/path */
        rc = parse_unix(p + 5, out, err, errlen);
        goto out;
    }
    char host[256];
    const char *he;
    bool bracketed = *p == '[';
    if (bracketed) {
        he = strchr(p, ']');
        if (!he) {
            rc = fail(err, errlen, "an IPv6 address needs its closing ']'");
            goto out;
        }
        p++;
    } else {
        he = p + strcspn(p, ":/");
    }
    if (he == p || (size_t)(he - p) >= sizeof(host)) {
        rc = fail(err, errlen, "expected a host: an address, localhost, + or *");
        goto out;
    }
    memcpy(host, p, (size_t)(he - p));
    host[he - p] = '\0';
    p = he + bracketed;
    long port = 80; /* Kestrel's default for http:// */
    if (*p == ':') {
        char *end;
        if (!isdigit((unsigned char)p[1])) {
            rc = fail(err, errlen, "expected a port number after ':'");
            goto out;
        }
        port = strtol(p + 1, &end, 10);
        if (port > 65535) {
            rc = fail(err, errlen, "port out of range (0-65535)");
            goto out;
        }
        p = end;
    }
    if (*p && strcmp(p, "/") != 0) {
        rc = fail(err, errlen, "a listen URL has no path (only http://HOST:PORT)");
        goto out;
    }
    out->kind = VG_LISTEN_TCP;
    out->port = (int)port;
    unsigned char bin[16];
    const char *bind = host;
    if (!bracketed && (strcmp(host, "+") == 0 || strcmp(host, "*") == 0)) {
        out->any = true;
    } else if (bracketed) {
        if (inet_pton(AF_INET6, host, bin) != 1) {
            rc = fail(err, errlen, "not an IPv6 address between [ ]");
            goto out;
        }
        static const unsigned char zero[16];
        out->any = memcmp(bin, zero, 16) == 0; /* Kestrel binds [::] dual-stack */
    } else if (strcasecmp(host, "localhost") == 0) {
        bind = "localhost";
    } else if (inet_pton(AF_INET, host, bin) != 1) {
        if (strspn(host, "0123456789.") == strlen(host)) {
            rc = fail(err, errlen, "not an IPv4 address");
            goto out;
        }
        out->any = true;
        *warning = "a host name binds every address, as in dotnet-monitor (Kestrel); write "
                   "an address or localhost to restrict it";
    }
    out->host = vg_strdup(out->any ? "::" : bind);
    if (out->any)
        out->canonical = vg_asprintf("http://0.0.0.0:%d", out->port);
    else if (strcasecmp(bind, "localhost") == 0)
        out->canonical = vg_asprintf("http://127.0.0.1:%d", out->port);
    else if (bracketed)
        out->canonical = vg_asprintf("http://[%s]:%d", host, out->port);
    else
        out->canonical = vg_asprintf("http://%s:%d", host, out->port);
    if (!out->host || !out->canonical)
        rc = VG_ENOMEM;
out:
    free(s);
    if (rc)
        vg_listen_url_free(out);
    return rc;
}
