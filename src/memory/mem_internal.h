/* mem_internal — helpers shared by the memory layers' files (not part of memory.h's contract). */
#ifndef MEMFUSE_MEM_INTERNAL_H
#define MEMFUSE_MEM_INTERNAL_H

#include "llm/llm_json.h"
#include "memory/memory.h"

/* obj[key] as trimmed, valid UTF-8 text of at most max bytes (cut at a character boundary), or NULL. */
char *mem_text(arena *a, const cJSON *obj, const char *key, size_t max);
/* obj[key] as a list of distinct names (strings only, each as mem_text with MEM_NAME_MAX), at most
 * MEM_MAX_LIST. NULL with *n = 0 when absent. */
const char **mem_names(arena *a, const cJSON *obj, const char *key, size_t *n);
/* The message numbers obj names ("messages" and its synonyms), ascending and distinct; every message
 * when it names none. */
int *mem_refs(arena *a, const cJSON *obj, int n_msgs, size_t *n);
/* JSON array text of names / of the ids of msgs[refs[i]-1]. */
char *mem_json_names(arena *a, const char *const *names, size_t n);
char *mem_json_ids(arena *a, const store_message *msgs, const int *refs, size_t n);
/* The first step of both layers: reads the flush's messages (into *msgs, *n) and, when there are any, asks
 * the model with `system` and the conversation (r->content NULL when there were none); *llm_ns grows by
 * the call's time. MEM_OK, MEM_GONE (the flush is gone) or MEM_RETRY, with err set. */
int mem_ask_flush(mem_ctx *m, const store_flush *f, const char *system, arena *a, store_message **msgs, size_t *n,
                  llm_reply *r, int64_t *llm_ns, char *err, size_t errlen);
/* An answer that could not be read as `what`: counted, named in err, freed. Returns MEM_BAD_OUTPUT. */
int mem_bad_output(mem_ctx *m, llm_reply *r, const char *what, char *err, size_t errlen);
/* Tells the server that a user's memory changed (answer caches). */
void mem_changed(mem_ctx *m, const char *user_id);

#endif
