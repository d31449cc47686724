/* Listen URLs in dotnet-monitor's (Kestrel's) forms, for the API and metrics listeners. */
#ifndef VG_LISTEN_H
#define VG_LISTEN_H

#include "config/settings.h"

#include <stddef.h>

/* Parses one URL: http://HOST[:PORT][/] with HOST an IPv4 or [IPv6] address, localhost, or
 * +, * and [::] for every address (a host name also binds every address, as Kestrel does:
 * *warning is set then); unix:/path and http://unix:/path. https:// is refused (vigil does not
 * terminate TLS). On success out's strings are malloc'ed (vg_listen_url_free); on failure
 * VG_EINVAL with a message in err. */
int vg_listen_url_parse(const char *text, struct vg_listen_url *out, char *err, size_t errlen,
                        const char **warning);
void vg_listen_url_free(struct vg_listen_url *u); /* frees the strings, not u */

#endif
