/* llm_json — reading JSON out of what a language model wrote.
 *
 * Models asked for JSON still wrap it in code fences, put prose before or after it, emit a BOM, or give
 * numbers as strings. These helpers find the JSON and read fields leniently; they never trust a type, and
 * every result is checked by its caller. Pure functions over their input; safe from any thread. */
#ifndef MEMFUSE_LLM_JSON_H
#define MEMFUSE_LLM_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The first complete JSON object (or, failing that, array) in text[0..len): inside ```json fences or
 * not, after any prose, ignoring text after it. Text with NUL bytes is read up to the first NUL. Returns a
 * cJSON tree (free with cJSON_Delete) or NULL when there is none. Nesting deeper than 64 is refused. */
cJSON *llm_json_extract(const char *text, size_t len);

/* obj[key] as a non-empty string with surrounding whitespace trimmed into buf (cut at a UTF-8 boundary to
 * fit), or NULL when absent, null, not a string, or blank. Numbers are not strings. */
const char *llm_json_str(const cJSON *obj, const char *key, char *buf, size_t buflen);
/* obj[key] as a number: a JSON number, or a string holding one ("0.9", " 90% " -> 0.9 when pct_ok).
 * Returns 0 and sets *out, or -1. NaN and infinities are refused. */
int llm_json_num(const cJSON *obj, const char *key, int pct_ok, double *out);
/* obj[key] when it is an array; a lone string or number is not wrapped. NULL otherwise. */
const cJSON *llm_json_arr(const cJSON *obj, const char *key);
/* The first of keys[] (NULL-terminated) present in obj, for models that rename fields ("facts"/"memories"). */
const cJSON *llm_json_any(const cJSON *obj, const char *const *keys);

#endif
