/* Startup: fires once, on the first sample of a process the rule's filters match (the engine
 * feeds that sample as soon as it discovers the process). The rule then finishes. */
#include "rules/trigger_int.h"

struct startup_state {
    bool fired;
};

static bool startup_observe(const void *p, void *state, const struct vg_sample *s)
{
    struct startup_state *st = state;
    if (st->fired)
        return false;
    st->fired = true;
    return true;
}

const struct vg_trigger_type vg__trigger_startup = {
    .name = "Startup",
    .flags = VG_TRIGGER_ONCE,
    .summary = "fires once when a matching process appears",
    .state_size = sizeof(struct startup_state),
    .observe = startup_observe,
};
