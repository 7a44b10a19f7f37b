/*
 * Launch geometry shared by the kernels in kernels/: grid-stride loops over size_t
 * element counts, with the grid capped so a launch never exceeds the hardware limit
 * and each thread does several elements on large tensors.
 */
#ifndef ELAG_KERNELS_LAUNCH_CUH
#define ELAG_KERNELS_LAUNCH_CUH

#include <cuda_runtime.h>

#include <stddef.h>

#define ELAG_BLOCK 256
/* Enough blocks to fill any current GPU several times over (an H200 holds 132 SMs x 8
 * blocks of 256 threads); beyond that a grid-stride loop is cheaper than more blocks. */
#define ELAG_GRID_MAX 8192u

static inline unsigned elag_grid_for(size_t n)
{
    size_t blocks = (n + ELAG_BLOCK - 1) / ELAG_BLOCK;
    return blocks > ELAG_GRID_MAX ? ELAG_GRID_MAX : (unsigned)(blocks ? blocks : 1);
}

/* Blocks for a kernel whose blocks each own whole rows (one row per block, looping over
 * rows when there are more than ELAG_GRID_MAX): the result then does not depend on the
 * grid, only on the block size. */
static inline unsigned elag_grid_rows(size_t rows)
{
    return rows > ELAG_GRID_MAX ? ELAG_GRID_MAX : (unsigned)(rows ? rows : 1);
}

/* First index and stride of a grid-stride loop, in size_t so n may exceed 2^32. */
#define ELAG_GRID_LOOP(i, n)                                                                       \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                       \
         i += (size_t)gridDim.x * blockDim.x)

#endif /* ELAG_KERNELS_LAUNCH_CUH */
