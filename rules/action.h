/* Action types (dotnet-monitor names and settings). rules/ only knows their schema: the engine
 * owns one runner per type and decides at run time whether it has one. */
#ifndef VG_ACTION_H
#define VG_ACTION_H

#include "config/tree.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    /* Produces an artifact sent to the named egress provider (settings field "Egress"). */
    VG_ACTION_EGRESS = 1u << 1,
};

struct vg_action_ctx {
    struct vg_tree *tree;
    struct vg_diags *diags;
    const struct vg_node *settings; /* Settings MAP, or NULL */
    const struct vg_pos *pos;       /* where the action was written */
    const char *path;               /* "CollectionRules.NAME.Actions[i].Settings" */
};

struct vg_action_type {
    const char *name;
    unsigned flags; /* VG_ACTION_* */
    const char *summary;
    const struct vg_field *fields;
    size_t n_fields;
    size_t settings_size;       /* size of the typed settings struct below */
    size_t egress_offset;       /* offset of `const char *egress`, or VG_NO_SET */
    size_t artifact_offset;     /* with egress_offset: offset of `const char *artifact_name` */
    const char *const *outputs; /* NULL-terminated names usable as $(Actions.NAME.OUTPUT) */
    void (*init)(void *settings);
    size_t (*check)(void *settings, const struct vg_action_ctx *cx); /* may be NULL */
};

extern const struct vg_action_type *const vg_action_types[];
extern const size_t vg_action_types_count;
const struct vg_action_type *vg_action_type_find(const char *name);
/* true when `type` documents the output `name` (case-insensitive). */
bool vg_action_has_output(const struct vg_action_type *type, const char *name);

/* --- typed settings, one struct per type (strings/nodes borrowed from the config tree) --- */

/* CollectDump Type, in the same order as engine/coredump.h's enum vg_dump_type so the engine
 * converts with a cast. */
enum vg_act_dump_type {
    VG_ACT_DUMP_WITH_HEAP = 0,
    VG_ACT_DUMP_FULL,
    VG_ACT_DUMP_MINI,
    VG_ACT_DUMP_TRIAGE
};
enum vg_log_level_setting {
    VG_LL_TRACE = 0,
    VG_LL_DEBUG,
    VG_LL_INFORMATION,
    VG_LL_WARNING,
    VG_LL_ERROR,
    VG_LL_CRITICAL,
    VG_LL_NONE
};
enum vg_artifact_format { VG_FMT_PLAIN_TEXT = 0, VG_FMT_NDJSON, VG_FMT_JSON_SEQUENCE };
enum vg_stacks_format { VG_STACKS_JSON = 0, VG_STACKS_PLAIN_TEXT, VG_STACKS_SPEEDSCOPE };

struct vg_act_execute {
    const char *path;
    const char *arguments;
    const struct vg_node *environment; /* vigil: MAP name -> value added to the child's minimal
                                          environment, or NULL */
    bool ignore_exit_code;
    uint64_t timeout_ms; /* vigil: 0 = wait forever */
};

/* vigil: who writes a dump. Auto is the runtime itself where it can (.NET: the runtime's
 * createdump, dotnet-monitor's dumps) and vigil's ELF core writer everywhere else. */
enum vg_act_dump_writer { VG_ACT_WRITER_AUTO = 0, VG_ACT_WRITER_NATIVE, VG_ACT_WRITER_RUNTIME };

struct vg_act_collect_dump {
    const char *egress;
    int type; /* enum vg_act_dump_type, default WithHeap */
    const char *artifact_name;
    int writer; /* enum vg_act_dump_writer, default Auto */
};

struct vg_act_collect_gcdump {
    const char *egress;
    const char *artifact_name;
};

struct vg_act_collect_trace {
    const char *egress;
    const char *profile;                  /* comma-separated TraceProfile names, or NULL */
    const struct vg_node *providers;      /* SEQ of {Name, Keywords, EventLevel, Arguments} */
    bool request_rundown;                 /* default true */
    int64_t buffer_size_mb;               /* default 256, 1-1024 */
    uint64_t duration_ms;                 /* default 30 s */
    const struct vg_node *stopping_event; /* {ProviderName, EventName, PayloadFilter} */
    const char *artifact_name;
};

struct vg_act_collect_logs {
    const char *egress;
    int default_level;                  /* enum vg_log_level_setting, default Warning */
    const struct vg_node *filter_specs; /* MAP category -> level */
    bool use_app_filters;               /* default true */
    int format;                         /* enum vg_artifact_format, default PlainText */
    uint64_t duration_ms;               /* default 30 s */
    const char *artifact_name;
};

struct vg_act_collect_live_metrics {
    const char *egress;
    bool include_default_providers; /* default true */
    const struct vg_node *providers;
    const struct vg_node *meters;
    uint64_t duration_ms; /* default 30 s */
    const char *artifact_name;
};

struct vg_act_collect_stacks {
    const char *egress;
    int format; /* enum vg_stacks_format, default Json */
    const char *artifact_name;
};

struct vg_act_collect_exceptions {
    const char *egress;
    int format; /* enum vg_artifact_format, default PlainText */
    const struct vg_node *filters;
    const char *artifact_name;
};

struct vg_act_load_profiler {
    const char *path;
    const char *clsid;
};

struct vg_act_env {
    const char *name;
    const char *value; /* SetEnvironmentVariable only */
};

#endif
