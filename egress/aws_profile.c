/* AWS shared credentials/config files (see aws_profile.h). The format is the AWS CLI's INI:
 * "[section]" lines, "key = value" lines, '#' and ';' comments; indented lines belong to a nested
 * setting (e.g. "s3 =" followed by its keys) and are skipped. */
#include "egress/aws_profile.h"

#include "config/error.h"
#include "config/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FILE_BYTES (1u << 20)

void vg__aws_profile_free(struct vg__aws_profile *p)
{
    if (!p)
        return;
    free(p->access_key_id);
    free(p->secret_access_key);
    free(p->session_token);
    free(p->region);
    free(p->source);
    memset(p, 0, sizeof(*p));
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Keys of one section of one file, as malloc'ed strings. */
struct section {
    bool found;
    char *access_key_id, *secret_access_key, *session_token, *region;
    char *unsupported; /* the first key naming a credential source vigil does not run */
};

static void section_free(struct section *s)
{
    free(s->access_key_id);
    free(s->secret_access_key);
    free(s->session_token);
    free(s->region);
    free(s->unsupported);
}

static int set(char **dst, const char *v)
{
    free(*dst);
    *dst = vg_strdup(v);
    return *dst ? 0 : VG_ENOMEM;
}

/* Reads section `want` (exact text between the brackets, e.g. "profile dev") of `path`. A
 * missing file is not an error (found stays false). */
static int read_section(const char *path, const char *want, struct section *out, char *err,
                        size_t errlen)
{
    static const char *const unsupported[] = {"role_arn",
                                              "credential_process",
                                              "sso_session",
                                              "sso_start_url",
                                              "web_identity_token_file",
                                              "credential_source",
                                              NULL};
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return VG_ECONFIG;
    }
    char line[4096];
    bool in = false;
    size_t total = 0;
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        total += strlen(line);
        if (total > MAX_FILE_BYTES) {
            snprintf(err, errlen, "%s is larger than 1 MiB", path);
            rc = VG_ECONFIG;
            break;
        }
        if (isspace((unsigned char)line[0]) && strspn(line, " \t\r\n") != strlen(line))
            continue; /* a nested setting's line */
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (close)
                *close = '\0';
            char *name = trim(s + 1);
            /* "[profile  dev]" and "[profile dev]" are one profile */
            if (strncmp(name, "profile", 7) == 0 && isspace((unsigned char)name[7])) {
                char *rest = trim(name + 7);
                in = strncmp(want, "profile ", 8) == 0 && strcmp(rest, want + 8) == 0;
            } else {
                in = strcmp(name, want) == 0;
            }
            out->found = out->found || in;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!in || !eq)
            continue;
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (!strcasecmp(key, "aws_access_key_id"))
            rc = set(&out->access_key_id, value);
        else if (!strcasecmp(key, "aws_secret_access_key"))
            rc = set(&out->secret_access_key, value);
        else if (!strcasecmp(key, "aws_session_token") || !strcasecmp(key, "aws_security_token"))
            rc = set(&out->session_token, value);
        else if (!strcasecmp(key, "region"))
            rc = set(&out->region, value);
        for (size_t i = 0; rc == 0 && unsupported[i]; i++)
            if (!strcasecmp(key, unsupported[i]) && !out->unsupported)
                rc = set(&out->unsupported, key);
    }
    fclose(f);
    return rc;
}

static char *default_path(const char *env, const char *file)
{
    const char *v = getenv(env);
    if (v && *v)
        return vg_strdup(v);
    const char *home = getenv("HOME");
    return home && *home ? vg_asprintf("%s/.aws/%s", home, file) : NULL;
}

/* a wins over b, key by key */
static int take(char **dst, char *a, char *b)
{
    const char *v = a ? a : b;
    if (!v)
        return 0;
    return (*dst = vg_strdup(v)) ? 0 : VG_ENOMEM;
}

int vg__aws_profile_load(const char *profile, const char *credentials_path,
                         struct vg__aws_profile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    err[0] = '\0';
    char *cred = credentials_path && *credentials_path
                     ? vg_strdup(credentials_path)
                     : default_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    char *conf = default_path("AWS_CONFIG_FILE", "config");
    char *conf_section =
        strcmp(profile, "default") == 0 ? vg_strdup("default") : vg_asprintf("profile %s", profile);
    struct section c = {0}, k = {0};
    int rc = conf_section ? 0 : VG_ENOMEM;
    if (rc == 0 && cred)
        rc = read_section(cred, profile, &c, err, errlen);
    if (rc == 0 && conf)
        rc = read_section(conf, conf_section, &k, err, errlen);
    if (rc)
        goto out;
    if (!c.found && !k.found) {
        snprintf(err, errlen, "no profile \"%s\" in %s%s%s", profile, cred ? cred : "(no HOME)",
                 conf ? " or " : "", conf ? conf : "");
        rc = VG_ENOTFOUND;
        goto out;
    }
    if ((rc = take(&out->access_key_id, c.access_key_id, k.access_key_id)) ||
        (rc = take(&out->secret_access_key, c.secret_access_key, k.secret_access_key)) ||
        (rc = take(&out->session_token, c.session_token, k.session_token)) ||
        (rc = take(&out->region, k.region, c.region)))
        goto out;
    if (!out->access_key_id || !out->secret_access_key) {
        const char *u = c.unsupported ? c.unsupported : k.unsupported;
        if (u)
            snprintf(err, errlen,
                     "AWS profile \"%s\" gets its credentials through %s, which vigil does not "
                     "support: give the profile aws_access_key_id and aws_secret_access_key, or "
                     "use a web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)",
                     profile, u);
        else
            snprintf(err, errlen,
                     "AWS profile \"%s\" has no aws_access_key_id and aws_secret_access_key",
                     profile);
        rc = VG_ECONFIG;
        goto out;
    }
    out->source = vg_asprintf("%s [%s]", c.access_key_id ? cred : conf,
                              c.access_key_id ? profile : conf_section);
    rc = out->source ? 0 : VG_ENOMEM;
out:
    section_free(&c);
    section_free(&k);
    free(cred);
    free(conf);
    free(conf_section);
    if (rc)
        vg__aws_profile_free(out);
    return rc;
}
