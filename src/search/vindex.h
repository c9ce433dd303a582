/* vindex — one user's in-memory vector index: exact (brute-force) cosine search, and an HNSW graph above a
 * size threshold.
 *
 * Owns: the user's unit vectors (L2-normalised, so cosine = dot product) in one contiguous row-major
 * matrix, with each row's id, type, session and agent for filtering, and a hash from id to row. Removal
 * swaps the last row into the hole, so the matrix stays dense. Search scans every row that passes the
 * filter (agent, type) with an AVX2+FMA dot product when the CPU has it (checked once, at run time) or a
 * portable loop, keeping the best k in a small heap: filters are applied inside the scan, so k results come
 * back whenever k rows pass the filter.
 *
 * From VINDEX_HNSW_THRESHOLD rows (vindex_set_hnsw_threshold changes it) the index also owns an HNSW graph
 * (hnsw.h) over its rows, built when the rows reach the threshold and kept up to date by put/remove from
 * then on (a replaced or removed row leaves a tombstone; a quarter of tombstones rebuilds the graph, or drops
 * it when the rows fell below the threshold). Search then walks the graph (approximate: recall@10 ≈ 0.98+),
 * filtering inside the walk, and scans exactly when the graph finds fewer than k rows passing the filter,
 * so k results still come back whenever k rows pass. Puts cost O(ef_construction · log n) dot products with
 * a graph (the put that crosses the threshold, or a rebuild, costs a whole build), searches O(ef · log n).
 *
 * Not thread-safe: the owner (the user's service) guards it with a read-write lock — search under the read
 * lock, put/remove under the write lock. Ids are at most VINDEX_ID_MAX-1 bytes (UUID strings). */
#ifndef MEMFUSE_VINDEX_H
#define MEMFUSE_VINDEX_H

#include <stddef.h>

#define VINDEX_ID_MAX 40
#define VINDEX_HNSW_THRESHOLD 20000 /* default rows from which the graph is used */

typedef struct vindex vindex;

/* Row types are the store's unit types: 0 message, 1 knowledge, 2 episode, 3 fact. */
typedef struct vindex_filter {
    const char *agent_id; /* NULL: any; else rows of that agent's sessions, and knowledge (which has none) */
    int messages, knowledge, episodes, facts; /* which types may be returned */
} vindex_filter;

typedef struct vindex_hit {
    char id[VINDEX_ID_MAX];
    int type; /* enum store_hit_type */
    float sim;
} vindex_hit;

vindex *vindex_new(int dim);
/* Rows from which search uses the HNSW graph (0: never, exact scan only); builds or drops the graph to
 * match. 0, or -1 when the build runs out of memory (the index stays exact and correct). */
int vindex_set_hnsw_threshold(vindex *v, size_t threshold);
/* Candidate list of a graph search (HNSW ef_search; at least k is used): larger finds more of the true
 * nearest at more cost. 0: the graph's default (HNSW_EF_DEFAULT). Takes effect on the next search. */
void vindex_set_hnsw_ef(vindex *v, size_t ef);
/* Whether searches currently go through the graph (for tests and benchmarks). */
int vindex_has_graph(const vindex *v);
void vindex_free(vindex *v);
int vindex_dim(const vindex *v);
size_t vindex_size(const vindex *v);
size_t vindex_bytes(const vindex *v);
/* Adds or replaces the row of id. Returns 0, or -1 (out of memory, id too long: the owner should drop the
 * index; rows are consistent but the graph may be missing). */
int vindex_put(vindex *v, const char *id, int type, const char *session_id, const char *agent_id, const float *vec);
/* Removes id's row if present; returns 1 if it was. */
int vindex_remove(vindex *v, const char *id);
/* Removes every row of a session; returns how many. */
size_t vindex_remove_session(vindex *v, const char *session_id);
/* The best (highest cosine) at most k rows passing f, best first, into out (k slots). Returns how many. */
size_t vindex_search(const vindex *v, const float *q, size_t k, const vindex_filter *f, vindex_hit *out);

/* Dot product used by the search (exposed for tests and benchmarks). */
float vindex_dot(const float *a, const float *b, int dim);

#endif
