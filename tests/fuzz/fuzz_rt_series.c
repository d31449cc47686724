/* libFuzzer target: a meter time series' sample name (vg_rt_series_split). The name carries the
 * tags a target's Meter sends ("INSTRUMENT{k=v,...}@pNN"): any bytes. Aborts when a part falls
 * outside the name or the parts disagree with each other. */
#include "rules/metric.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1);
    if (!name)
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    size_t len = strlen(name);
    struct vg_rt_series sr;
    vg_rt_series_split(name, &sr);
    if (sr.instrument_len > len || memchr(name, '{', sr.instrument_len) ||
        memchr(name, '@', sr.instrument_len))
        abort();
    if (sr.percentile < -1 || sr.percentile > 999)
        abort();
    if (sr.tags && (sr.tags != name + sr.instrument_len + 1 ||
                    sr.instrument_len + 2 + sr.tags_len > len || sr.tags[sr.tags_len] != '}'))
        abort();
    free(name);
    return 0;
}
