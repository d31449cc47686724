/* libcurl, loaded on first use (see curl_lazy.c why). vigil calls libcurl only through these
 * functions, which behave as libcurl's namesakes (curl_easy_init...); when the library cannot be
 * loaded each reports failure the way libcurl itself would (NULL, CURLE_FAILED_INIT, -1).
 * vg__curl_global_init only records its flags: the real one runs once, when the library loads. */
#ifndef VG_CURL_LAZY_H
#define VG_CURL_LAZY_H

#include <curl/curl.h>

CURLcode vg__curl_global_init(long flags);
void vg__curl_global_cleanup(void);
CURL *vg__curl_easy_init(void);
/* The option number says which type the one argument has (curl's CURLOPTTYPE_* ranges). */
CURLcode vg__curl_easy_setopt(CURL *c, CURLoption opt, ...);
CURLcode vg__curl_easy_perform(CURL *c);
void vg__curl_easy_cleanup(CURL *c);
/* Every CURLINFO takes one pointer. */
CURLcode vg__curl_easy_getinfo(CURL *c, CURLINFO info, ...);
void vg__curl_easy_reset(CURL *c);
const char *vg__curl_easy_strerror(CURLcode code);
struct curl_slist *vg__curl_slist_append(struct curl_slist *l, const char *s);
void vg__curl_slist_free_all(struct curl_slist *l);
time_t vg__curl_getdate(const char *p, const time_t *unused);

#endif
