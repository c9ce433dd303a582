/* hnsw — a Hierarchical Navigable Small World graph (Malkov & Yashunin, 2016) over the rows of a caller's
 * matrix of unit vectors, ranked by inner product (cosine, through vindex_dot).
 *
 * Owns: the graph and nothing of the caller's. Each inserted row becomes a node (ids 0, 1, ... in insertion
 * order) that remembers its row; the vectors stay in the caller's row-major matrix, passed to every call
 * (it may be reallocated between calls), except the vectors of deleted nodes: hnsw_delete copies a node's
 * vector into the graph and marks the node a tombstone, so it still guides searches but is never returned.
 * The caller rebuilds the graph when tombstones pile up (hnsw_tombstones) and reports row moves
 * (hnsw_move). Links: up to m per node on the upper layers, 2m on layer 0, chosen with the paper's
 * neighbour-selection heuristic; a node's level comes from a per-graph PRNG seeded by the config, so the
 * same inserts give the same graph and the same answers.
 *
 * Locking: none inside. The caller serialises hnsw_insert/hnsw_delete/hnsw_move (a write lock); any number
 * of hnsw_search calls may run together (a read lock): a search touches only its own scratch memory.
 *
 * Cost: insert O(ef_construction · m · log n) dot products; search O(ef · m · log n), ef grown (×4, up to
 * HNSW_EF_MAX) while the filter leaves fewer than k results; memory per node 4·(2m+1) bytes of layer-0
 * links plus ~4·(m+1)/ (m−1) bytes of upper links on average, plus the search scratch of inserts
 * (~12 bytes per node). */
#ifndef MEMFUSE_HNSW_H
#define MEMFUSE_HNSW_H

#include <stddef.h>
#include <stdint.h>

#define HNSW_EF_DEFAULT 64 /* ef_search of the default config (BENCHMARKS.md "Vector index": 128 for ~1M rows) */
#define HNSW_EF_MAX 1024 /* the largest ef a filtered search grows to before giving up */
#define HNSW_MIN_PASS_PCT 10/* below this share of walked nodes passing the filter, a search gives up */

typedef struct hnsw hnsw;

typedef struct hnsw_config {
    int m;               /* links per node on the upper layers (2m on layer 0); default 16 */
    int ef_construction; /* candidate list while inserting; default 200 */
    int ef_search;       /* candidate list while searching (at least k); default HNSW_EF_DEFAULT */
    uint64_t seed;       /* of the level PRNG */
} hnsw_config;

typedef struct hnsw_hit {
    size_t row;
    float sim;
} hnsw_hit;

/* Whether row may be returned by a search (tombstones never are). */
typedef int (*hnsw_accept_fn)(size_t row, void *ctx);

void hnsw_config_default(hnsw_config *c);
/* NULL when out of memory or dim/config out of range (m in 2..64, ef_construction ≥ 1). c NULL: defaults. */
hnsw *hnsw_new(int dim, const hnsw_config *c);
void hnsw_free(hnsw *h);

/* Adds row `row` (vector mat + row·dim) as a new node; its id into *node. 0, or -1 when out of memory
 * (the graph is unchanged). */
int hnsw_insert(hnsw *h, const float *mat, size_t row, uint32_t *node);
/* Makes node a tombstone, copying its vector (still at its row of mat) into the graph. 0, or -1 when out of
 * memory (the graph is unchanged). Deleting a tombstone does nothing. */
int hnsw_delete(hnsw *h, const float *mat, uint32_t node);
/* The live node's vector now lives at row. */
void hnsw_move(hnsw *h, uint32_t node, size_t row);

size_t hnsw_nodes(const hnsw *h);      /* tombstones included */
size_t hnsw_tombstones(const hnsw *h);
size_t hnsw_bytes(const hnsw *h);

/* The best (highest inner product with q) at most k live nodes whose rows accept() takes (NULL: all),
 * best first, into out (k slots); their count into *n. ef 0: the config's. Nodes that fail the filter or are
 * tombstones are walked through but not returned; while fewer than k pass, the search is repeated with a
 * 4× larger ef, up to HNSW_EF_MAX. Returns 0; 1 when under HNSW_MIN_PASS_PCT% of the live nodes walked
 * pass the filter (the walk would miss most of the right ones: an exact scan of the few passing rows is
 * both better and cheap), with *n 0; -1 when out of memory (*n 0). */
int hnsw_search(const hnsw *h, const float *mat, const float *q, size_t k, size_t ef, hnsw_accept_fn accept,
                void *ctx, hnsw_hit *out, size_t *n);

#endif
