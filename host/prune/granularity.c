/*
 * The table of pruning granularities (see granularity.h). Adding one = a `group` function
 * (its group shape, and the check that a tensor fits it), a `select` for one tensor and,
 * when it has a global scope, a `select_global`; its spelling in config/names.c and its
 * value in the elag_prune_granularity enum. The structured entries share the host code
 * below: a tensor is viewed as (rows, cols) = (out, in) or (out, C*kh*kw), row-major.
 */
#include "prune/granularity.h"

#include "core/check.h"
#include "prune/mask.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- element: on the device ---- */

static elag_status group_element(const elag_prune_setup *s, const elag_model *m,
                                 const elag_param *p, int *gr, int *gc)
{
    (void)s, (void)m, (void)p;
    *gr = *gc = 1;
    return ELAG_OK;
}

static elag_status select_element(elag_model *m, const elag_prune_setup *s, int q, double sparsity)
{
    const elag_param *p = &m->reg[s->tensors[q].param];
    size_t k = (size_t)llround(sparsity * (double)p->count);
    if (k > p->count) k = p->count;
    return elag_be_mask_select(m->be, m->masks + p->mask_off, m->scores + p->mask_off, p->count, k);
}

/* One threshold over the pool: tensors outside it score +inf in a scratch copy, so they
 * are never chosen (their masks come out 1 and mask.c then sets them). */
static elag_status select_global_element(elag_model *m, const elag_prune_setup *s, double sparsity)
{
    size_t k = (size_t)llround(sparsity * (double)s->pool_count);
    if (k > s->pool_count) k = s->pool_count;
    const float *score = m->scores;
    if (s->scratch) {
        ELAG_TRY(elag_be_copy(m->be, s->scratch, m->scores, m->n_masked * sizeof(float)));
        for (int q = 0; q < s->n_tensors; q++) {
            const elag_param *p = &m->reg[s->tensors[q].param];
            if (!elag_prune_in_pool(&s->tensors[q]))
                ELAG_TRY(elag_be_fill(m->be, s->scratch + p->mask_off, p->count, INFINITY));
        }
        score = s->scratch;
    } else {
        ELAG_ASSERT(s->pool_count == m->n_masked);
    }
    return elag_be_mask_select(m->be, m->masks, score, m->n_masked, k);
}

/* ---- the structured entries: host selection ---- */

static elag_status layer_fail(const elag_model *m, const elag_param *p, const char *what, int a,
                              int b, const char *key)
{
    const elag_layer *l = &m->layers[p->layer];
    return elag_fail(ELAG_ERR_INPUT,
                     "prune: layer '%s' (%s): %s: its weight is (%d, %d) as a matrix, and %s "
                     "[%d, %d] does not divide it",
                     l->cfg.name, l->kind->name, what, p->rows, p->cols, key, a, b);
}

static elag_status group_nm(const elag_prune_setup *s, const elag_model *m, const elag_param *p,
                            int *gr, int *gc)
{
    if (p->cols % s->m) {
        const elag_layer *l = &m->layers[p->layer];
        return elag_fail(ELAG_ERR_INPUT,
                         "prune: layer '%s' (%s): prune.granularity nm needs rows of whole "
                         "groups of prune.m %d, but its rows have %d inputs",
                         l->cfg.name, l->kind->name, s->m, p->cols);
    }
    *gr = 1;
    *gc = s->m;
    return ELAG_OK;
}

static elag_status group_block(const elag_prune_setup *s, const elag_model *m, const elag_param *p,
                               int *gr, int *gc)
{
    if (p->rows % s->block[0] || p->cols % s->block[1])
        return layer_fail(m, p, "prune.granularity block", s->block[0], s->block[1], "prune.block");
    *gr = s->block[0];
    *gc = s->block[1];
    return ELAG_OK;
}

static elag_status group_row(const elag_prune_setup *s, const elag_model *m, const elag_param *p,
                             int *gr, int *gc)
{
    (void)s, (void)m;
    ELAG_ASSERT(p->structure_axis == 0); /* rows: the output neurons or filters */
    *gr = 1;
    *gc = p->cols;
    return ELAG_OK;
}

/* A tensor's scores and mask on the host. */
typedef struct host_tensor {
    float *score; /* (rows, cols) */
    float *mask;  /* (rows, cols) 0/1 */
} host_tensor;

static elag_status host_get(elag_model *m, const elag_param *p, host_tensor *h)
{
    h->score = malloc(p->count * sizeof(float));
    h->mask = malloc(p->count * sizeof(float));
    if (!h->score || !h->mask) return elag_fail(ELAG_ERR_NOMEM, "prune: out of host memory");
    ELAG_TRY(elag_be_to_host(m->be, h->score, m->scores + p->mask_off, p->count * sizeof(float)));
    return elag_be_to_host(m->be, h->mask, m->masks + p->mask_off, p->count * sizeof(float));
}

static elag_status host_put(elag_model *m, const elag_param *p, const host_tensor *h)
{
    return elag_be_to_device(m->be, m->masks + p->mask_off, h->mask, p->count * sizeof(float));
}

static void host_free(host_tensor *h)
{
    free(h->score);
    free(h->mask);
}

/* Score of group g of a tensor (gr x gc blocks of its (rows, cols) view, numbered
 * row-major): the norm of its live entries' scores over the group size (RMS for l2, mean
 * |score| for l1, so groups of different tensors compare in global scope), or -1 when no
 * entry is live, below every other group. */
static double group_score(const host_tensor *h, int cols, int gr, int gc, size_t g,
                          elag_prune_norm norm)
{
    int per_row = cols / gc;
    size_t r0 = (g / (size_t)per_row) * (size_t)gr, c0 = (g % (size_t)per_row) * (size_t)gc;
    double acc = 0;
    int live = 0;
    for (int i = 0; i < gr; i++)
        for (int j = 0; j < gc; j++) {
            size_t at = (r0 + (size_t)i) * (size_t)cols + c0 + (size_t)j;
            if (h->mask[at] == 0.0f) continue;
            double v = h->score[at];
            acc += norm == ELAG_PRUNE_NORM_L1 ? fabs(v) : v * v;
            live = 1;
        }
    if (!live) return -1.0;
    acc /= (double)gr * (double)gc;
    return norm == ELAG_PRUNE_NORM_L1 ? acc : sqrt(acc);
}

static void group_zero(host_tensor *h, int cols, int gr, int gc, size_t g)
{
    int per_row = cols / gc;
    size_t r0 = (g / (size_t)per_row) * (size_t)gr, c0 = (g % (size_t)per_row) * (size_t)gc;
    for (int i = 0; i < gr; i++)
        for (int j = 0; j < gc; j++) h->mask[(r0 + (size_t)i) * (size_t)cols + c0 + (size_t)j] = 0;
}

typedef struct ranked_group {
    double score;
    int tensor; /* q */
    size_t group;
} ranked_group;

/* Lowest score first; ties by tensor, then group (layer order, then position). */
static int ranked_cmp(const void *a, const void *b)
{
    const ranked_group *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    if (x->tensor != y->tensor) return x->tensor < y->tensor ? -1 : 1;
    return (x->group > y->group) - (x->group < y->group);
}

/* Whole groups of one tensor: the fewest lowest-scoring groups that give at least
 * llround(sparsity * count) zeros. */
static elag_status select_groups(elag_model *m, const elag_prune_setup *s, int q, double sparsity)
{
    const elag_prune_tensor *t = &s->tensors[q];
    const elag_param *p = &m->reg[t->param];
    size_t gsize = (size_t)t->group_rows * (size_t)t->group_cols;
    size_t n_groups = p->count / gsize;
    size_t k = (size_t)llround(sparsity * (double)p->count);
    size_t take = (k + gsize - 1) / gsize;
    if (take > n_groups) take = n_groups;
    host_tensor h = {0};
    ranked_group *order = malloc((n_groups ? n_groups : 1) * sizeof *order);
    elag_status st = order ? host_get(m, p, &h) : elag_fail(ELAG_ERR_NOMEM, "prune: out of memory");
    if (st == ELAG_OK) {
        for (size_t g = 0; g < n_groups; g++)
            order[g] = (ranked_group){
                group_score(&h, p->cols, t->group_rows, t->group_cols, g, s->norm), q, g};
        qsort(order, n_groups, sizeof *order, ranked_cmp);
        for (size_t i = 0; i < p->count; i++) h.mask[i] = 1.0f;
        for (size_t i = 0; i < take; i++)
            group_zero(&h, p->cols, t->group_rows, t->group_cols, order[i].group);
        st = host_put(m, p, &h);
    }
    free(order);
    host_free(&h);
    return st;
}

/* The groups of every pool tensor ranked together; the lowest are pruned until the pool
 * has at least llround(sparsity * its entries) zeros. */
static elag_status select_global_groups(elag_model *m, const elag_prune_setup *s, double sparsity)
{
    size_t total = 0;
    for (int q = 0; q < s->n_tensors; q++) {
        const elag_prune_tensor *t = &s->tensors[q];
        if (elag_prune_in_pool(t))
            total += m->reg[t->param].count / ((size_t)t->group_rows * (size_t)t->group_cols);
    }
    host_tensor h[ELAG_MAX_PARAMS];
    memset(h, 0, sizeof h);
    ranked_group *order = malloc((total ? total : 1) * sizeof *order);
    elag_status st = order ? ELAG_OK : elag_fail(ELAG_ERR_NOMEM, "prune: out of host memory");
    size_t n = 0;
    for (int q = 0; st == ELAG_OK && q < s->n_tensors; q++) {
        const elag_prune_tensor *t = &s->tensors[q];
        if (!elag_prune_in_pool(t)) continue;
        const elag_param *p = &m->reg[t->param];
        st = host_get(m, p, &h[q]);
        size_t n_groups = p->count / ((size_t)t->group_rows * (size_t)t->group_cols);
        for (size_t g = 0; st == ELAG_OK && g < n_groups; g++)
            order[n++] = (ranked_group){
                group_score(&h[q], p->cols, t->group_rows, t->group_cols, g, s->norm), q, g};
        for (size_t i = 0; st == ELAG_OK && i < p->count; i++) h[q].mask[i] = 1.0f;
    }
    if (st == ELAG_OK) {
        qsort(order, n, sizeof *order, ranked_cmp);
        size_t k = (size_t)llround(sparsity * (double)s->pool_count), zeros = 0;
        for (size_t i = 0; i < n && zeros < k; i++) {
            const elag_prune_tensor *t = &s->tensors[order[i].tensor];
            group_zero(&h[order[i].tensor], m->reg[t->param].cols, t->group_rows, t->group_cols,
                       order[i].group);
            zeros += (size_t)t->group_rows * (size_t)t->group_cols;
        }
        for (int q = 0; st == ELAG_OK && q < s->n_tensors; q++)
            if (elag_prune_in_pool(&s->tensors[q]))
                st = host_put(m, &m->reg[s->tensors[q].param], &h[q]);
    }
    for (int q = 0; q < s->n_tensors; q++) host_free(&h[q]);
    free(order);
    return st;
}

/* Each group of M consecutive entries of a row keeps its N best (pruned entries rank
 * lowest, then (score, index) as mask_select): exactly M - N zeros per group. */
static elag_status select_nm(elag_model *m, const elag_prune_setup *s, int q, double sparsity)
{
    (void)sparsity; /* the pattern is the sparsity: 1 - N/M */
    const elag_param *p = &m->reg[s->tensors[q].param];
    host_tensor h = {0};
    elag_status st = host_get(m, p, &h);
    ranked_group *g = malloc((size_t)s->m * sizeof *g);
    if (st == ELAG_OK && !g) st = elag_fail(ELAG_ERR_NOMEM, "prune: out of host memory");
    for (size_t base = 0; st == ELAG_OK && base < p->count; base += (size_t)s->m) {
        for (int j = 0; j < s->m; j++) {
            size_t at = base + (size_t)j;
            g[j] = (ranked_group){h.mask[at] == 0.0f ? -INFINITY : (double)h.score[at], 0, at};
        }
        qsort(g, (size_t)s->m, sizeof *g, ranked_cmp);
        for (int j = 0; j < s->m; j++) h.mask[g[j].group] = j < s->m - s->n ? 0.0f : 1.0f;
    }
    if (st == ELAG_OK) st = host_put(m, p, &h);
    free(g);
    host_free(&h);
    return st;
}

static const elag_prune_granularity_def granularities[] = {
    [ELAG_PRUNE_GRANULARITY_ELEMENT] = {.name = "element",
                                        .group = group_element,
                                        .select = select_element,
                                        .select_global = select_global_element},
    [ELAG_PRUNE_GRANULARITY_NM] = {.name = "nm", .group = group_nm, .select = select_nm},
    [ELAG_PRUNE_GRANULARITY_BLOCK] = {.name = "block",
                                      .group = group_block,
                                      .select = select_groups,
                                      .select_global = select_global_groups},
    [ELAG_PRUNE_GRANULARITY_NEURON] = {.name = "neuron",
                                       .group = group_row,
                                       .select = select_groups,
                                       .select_global = select_global_groups},
    [ELAG_PRUNE_GRANULARITY_CHANNEL] = {.name = "channel",
                                        .group = group_row,
                                        .select = select_groups,
                                        .select_global = select_global_groups},
};

const elag_prune_granularity_def *elag_prune_granularity_get(elag_prune_granularity g)
{
    if ((int)g < 0 || (size_t)g >= sizeof granularities / sizeof granularities[0]) return NULL;
    return granularities[g].select ? &granularities[g] : NULL;
}
