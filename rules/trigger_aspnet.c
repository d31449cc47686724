/* dotnet-monitor's ASP.NET triggers (request count, slow requests, response status codes).
 * They need the runtime's hosting events: schema only for now. */
#include "rules/trigger_int.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct asp_cfg {
    int64_t count;
    uint64_t duration_ms;
    uint64_t window_ms;
    struct vg_strlist include, exclude, status;
};

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

static size_t status_check(void *p, const struct vg_trigger_ctx *cx)
{
    struct asp_cfg *c = p;
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
    .init = asp_init,
    .check = count_check,
};

const struct vg_trigger_type vg__trigger_aspnet_duration = {
    .name = "AspNetRequestDuration",
    .runtime = "dotnet",
    .summary = "number of slow ASP.NET requests within a sliding window",
    .fields = duration_fields,
    .n_fields = VG_ARRAY_SIZE(duration_fields),
    .config_size = sizeof(struct asp_cfg),
    .init = asp_init,
    .check = count_check,
};

const struct vg_trigger_type vg__trigger_aspnet_status = {
    .name = "AspNetResponseStatus",
    .runtime = "dotnet",
    .summary = "number of ASP.NET responses with given status codes within a sliding window",
    .fields = status_fields,
    .n_fields = VG_ARRAY_SIZE(status_fields),
    .config_size = sizeof(struct asp_cfg),
    .init = asp_init,
    .check = status_check,
};
