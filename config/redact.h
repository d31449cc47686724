/* Secret values never leave the process in text. What a ${env:NAME} or ${file:/path} reference
 * resolved to is registered here by the configuration loader, and the log, configuration
 * diagnostics and the API's JSON answers pass through vg_redact(), which replaces each
 * registered value by "***", whatever field it came from and whatever message quotes it (a URL
 * in a libcurl error, a value a parser refused). Values stay registered for the process's life:
 * after a reload, messages about the previous configuration may still be on their way. */
#ifndef VG_REDACT_H
#define VG_REDACT_H

#include <stdbool.h>
#include <stddef.h>

/* Values shorter than this are not redacted: they would match everywhere (and are no secret). */
#define VG_REDACT_MIN_LEN 4
/* At most this many values are kept (the first ones registered). */
#define VG_REDACT_MAX 256

/* Registers a secret value (copied); duplicates and short values are ignored. */
void vg_redact_add(const char *secret);
/* True when at least one value is registered (callers skip work otherwise). */
bool vg_redact_active(void);
/* Replaces every registered value in the NUL-terminated s, in place (it only shrinks).
 * Returns true when something was replaced. */
bool vg_redact(char *s);
/* Forgets every value (tests). */
void vg_redact_reset(void);

#endif
