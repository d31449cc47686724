/* dotnet-monitor's ASP.NET triggers: requests started (AspNetRequestCount), requests that took
 * at least RequestDuration (AspNetRequestDuration), responses with a status in StatusCodes
 * (AspNetResponseStatus), counted over SlidingWindowDuration for the paths IncludePaths and not
 * ExcludePaths (globs: '*' within a segment, '** /' any number of segments, case-insensitive,
 * exclusions first), from the request activities the dotnet adapter's session reads
 * (struct vg_rt_request in the sample). The window is counted in 32 buckets (fixed memory, so
 * a burst of a million requests costs nothing): it spans between 31/32 of the window and the
 * window. After firing, the count starts again from zero (dotnet-monitor starts a new trigger).
 * Unlike dotnet-monitor, a request still running is not counted by AspNetRequestDuration before
 * it ends. */
#include "rules/trigger_int.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ASP_MAX_RANGES 32
#define ASP_BUCKETS 32

enum asp_kind { ASP_COUNT, ASP_DURATION, ASP_STATUS };

struct asp_cfg {
    int64_t count;
    uint64_t duration_ms;
    uint64_t window_ms;
    struct vg_strlist include, exclude, status;
    enum asp_kind kind;
    int lo[ASP_MAX_RANGES], hi[ASP_MAX_RANGES];
    size_t n_ranges;
};

struct asp_state {
    uint64_t id[ASP_BUCKETS]; /* bucket number (t / width) + 1; 0 = empty */
    uint64_t n[ASP_BUCKETS];
};

static const struct vg_rt_metric_ref asp_ref = {
    .provider = "Microsoft-Diagnostics-DiagnosticSource",
    .name = "Microsoft.AspNetCore.Hosting.HttpRequestIn"};

static const struct vg_rt_metric_ref *asp_rt_metric(const void *p)
{
    return &asp_ref;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* dotnet-monitor's GlobMatcher: "** /" is ([^/]*\/)*, '*' is [^/]*, the rest literal; anchored,
 * case-insensitive. `budget` bounds the backtracking. */
static bool glob(const char *p, const char *s, int *budget)
{
    if (--*budget < 0)
        return false;
    for (;;) {
        if (p[0] == '*' && p[1] == '*' && p[2] == '/') {
            /* zero or more segments, each ending in '/' */
            for (const char *t = s;; t++) {
                if (glob(p + 3, t, budget))
                    return true;
                t = strchr(t, '/');
                if (!t)
                    return false;
            }
        }
        if (*p == '*') {
            for (const char *t = s;; t++) {
                if (glob(p + 1, t, budget))
                    return true;
                if (!*t || *t == '/')
                    return false;
            }
        }
        if (!*p)
            return !*s;
        if (!*s || lower(*p) != lower(*s))
            return false;
        p++, s++;
    }
}

static bool any_glob(const struct vg_strlist *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++) {
        int budget = 100000;
        if (glob(l->v[i], path, &budget))
            return true;
    }
    return false;
}

static bool path_ok(const struct asp_cfg *c, const char *path)
{
    if (any_glob(&c->exclude, path))
        return false;
    return c->include.n == 0 || any_glob(&c->include, path);
}

static uint64_t window_total(const struct asp_state *st, uint64_t cur)
{
    uint64_t total = 0;
    for (int i = 0; i < ASP_BUCKETS; i++)
        if (st->id[i] && st->id[i] + ASP_BUCKETS > cur)
            total += st->n[i];
    return total;
}

static bool asp_observe(const void *p, void *state, const struct vg_sample *s)
{
    const struct asp_cfg *c = p;
    struct asp_state *st = state;
    if (!s->rt)
        return false;
    uint64_t width = c->window_ms / ASP_BUCKETS ? c->window_ms / ASP_BUCKETS : 1;
    uint64_t cur = s->t_ms / width + 1;
    uint64_t n = 0;
    for (size_t i = 0; i < s->rt->n_req; i++) {
        const struct vg_rt_request *r = &s->rt->req[i];
        bool hit = false;
        if (c->kind == ASP_COUNT)
            hit = !r->stop;
        else if (c->kind == ASP_DURATION)
            hit = r->stop && r->duration_ms >= c->duration_ms;
        else
            for (size_t k = 0; r->stop && k < c->n_ranges && !hit; k++)
                hit = r->status >= c->lo[k] && r->status <= c->hi[k];
        if (hit && path_ok(c, r->path))
            n++;
    }
    int slot = (int)(cur % ASP_BUCKETS);
    if (st->id[slot] != cur) {
        st->id[slot] = cur;
        st->n[slot] = 0;
    }
    st->n[slot] += n;
    if (window_total(st, cur) < (uint64_t)c->count)
        return false;
    memset(st, 0, sizeof *st);
    return true;
}

#define ASP_COMMON                                                                                 \
    {VG__FLD("SlidingWindowDuration", VG_FIELD_DURATION, struct asp_cfg, window_ms), VG__NOSET,    \
     .min = VG__SEC, .max = VG__DAY, .help = "a duration from 00:00:01 to 1.00:00:00"},            \
        {VG__FLD("IncludePaths", VG_FIELD_STRLIST, struct asp_cfg, include), VG__NOSET,            \
         .help = "a list of request path patterns"},                                               \
    {                                                                                              \
        VG__FLD("ExcludePaths", VG_FIELD_STRLIST, struct asp_cfg, exclude), VG__NOSET,             \
            .help = "a list of request path patterns"                                              \
    }

static const struct vg_field count_fields[] = {
    {VG__FLD("RequestCount", VG_FIELD_INT, struct asp_cfg, count), VG__NOSET, .min = 0, .max = 0,
     .required = true, .help = "a positive integer"},
    ASP_COMMON,
};

static const struct vg_field duration_fields[] = {
    {VG__FLD("RequestCount", VG_FIELD_INT, struct asp_cfg, count), VG__NOSET, .min = 0, .max = 0,
     .required = true, .help = "a positive integer"},
    {VG__FLD("RequestDuration", VG_FIELD_DURATION, struct asp_cfg, duration_ms), VG__NOSET,
     .min = 0, .max = VG__HOUR, .help = "a duration up to 01:00:00"},
    ASP_COMMON,
};

static const struct vg_field status_fields[] = {
    {VG__FLD("StatusCodes", VG_FIELD_STRLIST, struct asp_cfg, status), VG__NOSET, .required = true,
     .help = "a list of status codes or ranges such as 500-599"},
    {VG__FLD("ResponseCount", VG_FIELD_INT, struct asp_cfg, count), VG__NOSET, .min = 0, .max = 0,
     .required = true, .help = "a positive integer"},
    ASP_COMMON,
};

static void asp_init(void *p)
{
    struct asp_cfg *c = p;
    c->window_ms = VG__MIN;
    c->duration_ms = 5 * VG__SEC;
}

/* [1-5][0-9]{2} */
static bool status_code(const char *s)
{
    return s[0] >= '1' && s[0] <= '5' && isdigit((unsigned char)s[1]) &&
           isdigit((unsigned char)s[2]);
}

static size_t count_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct asp_cfg *c = p;
    return vg__check_min(cx->diags, cx->settings, cx->pos, cx->path, "RequestCount",
                         (double)c->count, 1, "a positive integer");
}

static size_t duration_check(void *p, const struct vg_trigger_ctx *cx)
{
    ((struct asp_cfg *)p)->kind = ASP_DURATION;
    return count_check(p, cx);
}

static size_t status_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct asp_cfg *c = p;
    c->kind = ASP_STATUS;
    if (vg__check_min(cx->diags, cx->settings, cx->pos, cx->path, "ResponseCount", (double)c->count,
                      1, "a positive integer"))
        return 1;
    const struct vg_node *list = vg_node_get(cx->settings, "StatusCodes");
    size_t errs = 0;
    if (c->status.n == 0) {
        char *path = vg_path_join(cx->path, "StatusCodes");
        vg_diag_err(cx->diags, list ? &list->pos : cx->pos, path ? path : cx->path,
                    "expected at least one status code");
        free(path);
        return 1;
    }
    for (size_t i = 0; i < c->status.n; i++) {
        const char *s = c->status.v[i];
        size_t n = strlen(s);
        bool ok = (n == 3 && status_code(s)) ||
                  (n == 7 && status_code(s) && s[3] == '-' && status_code(s + 4));
        if (ok && c->n_ranges < ASP_MAX_RANGES) {
            c->lo[c->n_ranges] = atoi(s);
            c->hi[c->n_ranges] = n == 7 ? atoi(s + 4) : c->lo[c->n_ranges];
            c->n_ranges++;
        }
        if (!ok) {
            char *base = vg_path_join(cx->path, "StatusCodes");
            char *path = base ? vg_path_index(base, i) : NULL;
            const struct vg_node *item =
                list && list->kind == VG_NODE_SEQ && i < list->n ? list->items[i] : list;
            vg_diag_err(cx->diags, item ? &item->pos : cx->pos, path ? path : cx->path,
                        "expected a status code 100-599 or a range such as 500-599, got \"%s\"", s);
            free(path);
            free(base);
            errs++;
        }
    }
    return errs;
}

const struct vg_trigger_type vg__trigger_aspnet_count = {
    .name = "AspNetRequestCount",
    .runtime = "dotnet",
    .summary = "number of ASP.NET requests within a sliding window",
    .fields = count_fields,
    .n_fields = VG_ARRAY_SIZE(count_fields),
    .config_size = sizeof(struct asp_cfg),
    .state_size = sizeof(struct asp_state),
    .init = asp_init,
    .check = count_check,
    .observe = asp_observe,
    .rt_metric = asp_rt_metric,
};

const struct vg_trigger_type vg__trigger_aspnet_duration = {
    .name = "AspNetRequestDuration",
    .runtime = "dotnet",
    .summary = "number of slow ASP.NET requests within a sliding window",
    .fields = duration_fields,
    .n_fields = VG_ARRAY_SIZE(duration_fields),
    .config_size = sizeof(struct asp_cfg),
    .state_size = sizeof(struct asp_state),
    .init = asp_init,
    .check = duration_check,
    .observe = asp_observe,
    .rt_metric = asp_rt_metric,
};

const struct vg_trigger_type vg__trigger_aspnet_status = {
    .name = "AspNetResponseStatus",
    .runtime = "dotnet",
    .summary = "number of ASP.NET responses with given status codes within a sliding window",
    .fields = status_fields,
    .n_fields = VG_ARRAY_SIZE(status_fields),
    .config_size = sizeof(struct asp_cfg),
    .state_size = sizeof(struct asp_state),
    .init = asp_init,
    .check = status_check,
    .observe = asp_observe,
    .rt_metric = asp_rt_metric,
};
