/*
 * Host sparse formats (host/sparse/sparse.h): dense -> CSR / Blocked-ELL -> dense round
 * trips are exact on odd shapes (not multiples of the block), empty rows, all-zero and
 * fully dense matrices; sizes follow the stated formulas; validate refuses broken
 * indptr, indices and block column indices with ELAG_ERR_INPUT naming the matrix.
 */
#include "sparse/sparse.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

/* (rows, cols) with a fraction `sparsity` of zeros, rows listed in empty_rows all zero. */
static float *matrix(int rows, int cols, double sparsity, uint64_t seed, int empty_every)
{
    size_t n = (size_t)rows * cols;
    float *w = malloc((n ? n : 1) * sizeof *w);
    float *u = malloc((n ? n : 1) * sizeof *u);
    cr_assert(w && u);
    elag_test_fill_uniform(w, n, -1.0f, 1.0f, seed);
    elag_test_fill_uniform(u, n, 0.0f, 1.0f, seed + 1);
    for (size_t i = 0; i < n; i++) {
        int r = (int)(i / (size_t)(cols ? cols : 1));
        if (u[i] < sparsity || (empty_every > 0 && r % empty_every == 0)) w[i] = 0.0f;
    }
    free(u);
    return w;
}

static void round_trip(int rows, int cols, double sparsity, elag_sparse_format f, int block,
                       int empty_every)
{
    float *w = matrix(rows, cols, sparsity, 11, empty_every);
    size_t n = (size_t)rows * cols;
    int64_t nz = 0;
    for (size_t i = 0; i < n; i++) nz += w[i] != 0.0f;
    elag_sparse_host h;
    OK(elag_sparse_from_dense(w, rows, cols, f, block, &h));
    OK(elag_sparse_validate(&h, "round trip"));
    cr_expect_eq(h.nnz, nz, "%s %dx%d: nnz %lld, want %lld", elag_sparse_format_name(f), rows,
                 cols, (long long)h.nnz, (long long)nz);
    float *back = malloc((n ? n : 1) * sizeof *back);
    memset(back, 0x7f, (n ? n : 1) * sizeof *back); /* garbage: to_dense must overwrite all */
    OK(elag_sparse_to_dense(&h, back));
    cr_expect_eq(memcmp(back, w, n * sizeof *w), 0, "%s B=%d %dx%d s=%.2f: round trip differs",
                 elag_sparse_format_name(f), block, rows, cols, sparsity);
    if (f == ELAG_SPARSE_FORMAT_CSR) {
        cr_expect_eq(elag_sparse_bytes(&h), 8 * nz + 4 * ((int64_t)rows + 1));
    } else if (f == ELAG_SPARSE_FORMAT_BELL) {
        cr_expect_eq(h.block_rows, (rows + block - 1) / block);
        int64_t blocks = (int64_t)h.block_rows * h.ell_cols;
        cr_expect_eq(elag_sparse_bytes(&h), 4 * blocks + 4 * blocks * block * block);
        cr_expect_geq(h.ell_cols, 1);
    }
    elag_sparse_host_free(&h);
    cr_expect_null(h.values, "free zeroes the struct");
    free(back);
    free(w);
}

Test(formats, csr_round_trips)
{
    const int shapes[][2] = {{7, 96}, {33, 17}, {1, 1}, {64, 64}, {5, 0}, {0, 5}, {300, 784}};
    const double sp[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++)
            round_trip(shapes[s][0], shapes[s][1], sp[k], ELAG_SPARSE_FORMAT_CSR, 0, 0);
    round_trip(33, 17, 0.3, ELAG_SPARSE_FORMAT_CSR, 0, 3); /* every third row empty */
}

Test(formats, bell_round_trips_odd_shapes)
{
    const int shapes[][2] = {{7, 96}, {33, 17}, {1, 1}, {50, 70}, {100, 31}};
    const int blocks[] = {16, 32, 1, 5};
    const double sp[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
            for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++)
                round_trip(shapes[s][0], shapes[s][1], sp[k], ELAG_SPARSE_FORMAT_BELL, blocks[b],
                           0);
    round_trip(70, 50, 0.2, ELAG_SPARSE_FORMAT_BELL, 16, 2);
}

Test(formats, dense_round_trip_and_names)
{
    round_trip(9, 13, 0.5, ELAG_SPARSE_FORMAT_DENSE, 0, 0);
    cr_expect_str_eq(elag_sparse_format_name(ELAG_SPARSE_FORMAT_DENSE), "dense");
    cr_expect_str_eq(elag_sparse_format_name(ELAG_SPARSE_FORMAT_CSR), "csr");
    cr_expect_str_eq(elag_sparse_format_name(ELAG_SPARSE_FORMAT_BELL), "bell");
    elag_sparse_host_free(NULL);
}

Test(formats, bell_layout_is_cusparse_like)
{
    /* 3 x 5, B = 2: block rows {0,1} {2}; block cols {0,1} {2,3} {4} */
    const float w[15] = {1, 0, 0, 0, 2,  /* row 0 */
                         0, 0, 0, 0, 0,  /* row 1 */
                         0, 0, 3, 0, 0}; /* row 2 */
    elag_sparse_host h;
    OK(elag_sparse_from_dense(w, 3, 5, ELAG_SPARSE_FORMAT_BELL, 2, &h));
    cr_assert_eq(h.block_rows, 2);
    cr_assert_eq(h.ell_cols, 2, "widest block row holds 2 blocks");
    cr_expect_eq(h.col_ind[0], 0);
    cr_expect_eq(h.col_ind[1], 2);
    cr_expect_eq(h.col_ind[2], 1);
    cr_expect_eq(h.col_ind[3], -1, "padding");
    /* values (4, 4): row 0 = block (0,0) row 0 | block (0,2) row 0 */
    cr_expect_eq(h.values[0], 1.0f);
    cr_expect_eq(h.values[2], 2.0f);
    cr_expect_eq(h.values[3], 0.0f, "column 5 is padding");
    cr_expect_eq(h.values[2 * 4 + 0], 3.0f, "row 2, block column 1, entry (0, 0)");
    cr_expect_eq(h.nnz, 3);
    elag_sparse_host_free(&h);
}

static elag_sparse_host small_csr(void)
{
    const float w[12] = {1, 0, 2, 0, 0, 0, 0, 0, 0, 3, 4, 5}; /* (3, 4), row 1 empty */
    elag_sparse_host h;
    OK(elag_sparse_from_dense(w, 3, 4, ELAG_SPARSE_FORMAT_CSR, 0, &h));
    return h;
}

static void expect_invalid(const elag_sparse_host *h, const char *needle)
{
    cr_expect_eq(elag_sparse_validate(h, "W"), ELAG_ERR_INPUT, "expected refusal: %s", needle);
    cr_expect(strstr(elag_last_error(), needle) != NULL, "message '%s' lacks '%s'",
              elag_last_error(), needle);
    cr_expect(strncmp(elag_last_error(), "W: ", 3) == 0, "names the matrix: %s",
              elag_last_error());
}

Test(formats, validate_catches_broken_csr)
{
    elag_sparse_host h = small_csr();
    OK(elag_sparse_validate(&h, "W"));
    h.indptr[1] = 3; /* row 0 ends after row 1 would start: not monotone */
    h.indptr[2] = 2;
    expect_invalid(&h, "not monotone");
    elag_sparse_host_free(&h);

    h = small_csr();
    h.indices[2] = 4; /* column 4 of 4 */
    expect_invalid(&h, "out of range");
    h.indices[2] = -1;
    expect_invalid(&h, "out of range");
    elag_sparse_host_free(&h);

    h = small_csr();
    h.indices[3] = 1; /* row 2: 1, 1, 3 */
    expect_invalid(&h, "not strictly increasing");
    elag_sparse_host_free(&h);

    h = small_csr();
    h.indptr[3] = 4; /* last entry must be nnz = 5 */
    expect_invalid(&h, "expected nnz");
    h.indptr[3] = 5;
    h.indptr[0] = 1;
    expect_invalid(&h, "indptr[0]");
    elag_sparse_host_free(&h);
}

Test(formats, validate_catches_broken_bell)
{
    float *w = matrix(40, 40, 0.9, 5, 0);
    w[0] = w[16] = 1.0f; /* blocks (0, 0) and (0, 1) kept: block row 0 starts 0, 1 */
    elag_sparse_host h;
    OK(elag_sparse_from_dense(w, 40, 40, ELAG_SPARSE_FORMAT_BELL, 16, &h));
    OK(elag_sparse_validate(&h, "W"));
    cr_assert_geq(h.ell_cols, 2);
    cr_assert(h.col_ind[0] == 0 && h.col_ind[1] == 1, "block row 0: %d %d", h.col_ind[0],
              h.col_ind[1]);
    int32_t saved = h.col_ind[0];
    h.col_ind[0] = 3; /* 3 block columns: 0..2 */
    expect_invalid(&h, "out of range");
    h.col_ind[0] = -2;
    expect_invalid(&h, "out of range");
    h.col_ind[0] = saved;
    h.col_ind[0] = 1, h.col_ind[1] = 0; /* swapped */
    expect_invalid(&h, "not strictly increasing");
    h.col_ind[0] = 1, h.col_ind[1] = 1; /* one block twice */
    expect_invalid(&h, "not strictly increasing");
    h.col_ind[0] = -1, h.col_ind[1] = 1; /* padding first */
    expect_invalid(&h, "padding");
    h.col_ind[0] = 0, h.col_ind[1] = 1;
    OK(elag_sparse_validate(&h, "W"));
    /* a value in the padded rows (40..47 of block row 2) */
    size_t vcols = (size_t)h.ell_cols * 16;
    h.values[(size_t)45 * vcols] = 1.0f;
    expect_invalid(&h, "padding");
    h.values[(size_t)45 * vcols] = 0.0f;
    h.block_rows = 2;
    expect_invalid(&h, "block rows");
    h.block_rows = 3;
    elag_sparse_host_free(&h);
    free(w);
}

Test(formats, from_dense_rejects_bad_arguments)
{
    float w[4] = {1, 2, 3, 4};
    elag_sparse_host h;
    cr_expect_eq(elag_sparse_from_dense(w, 2, 2, ELAG_SPARSE_FORMAT_BELL, 0, &h), ELAG_ERR_USAGE);
    cr_expect_eq(elag_sparse_from_dense(w, -1, 2, ELAG_SPARSE_FORMAT_CSR, 0, &h), ELAG_ERR_USAGE);
}
