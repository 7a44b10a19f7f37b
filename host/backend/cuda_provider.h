/*
 * The seam between libelag and libelag_cuda. The CUDA backend (host/cuda/, kernels/) is
 * its own library so that a CPU-only program links without the CUDA libraries; it hands
 * libelag this table, which backend.c reaches through a weak reference: a program linked
 * without libelag_cuda resolves it to NULL and sees zero CUDA devices. Because a weak
 * reference alone does not pull an object out of a static archive, libelag_cuda's link
 * interface (CMake target elag::elag_cuda, pkg-config elag-cuda) carries
 * `-Wl,--undefined=elag_cuda_backend_provider`, which does.
 */
#ifndef ELAG_BACKEND_CUDA_PROVIDER_H
#define ELAG_BACKEND_CUDA_PROVIDER_H

#include "backend/backend.h"

typedef struct elag_cuda_provider {
    /* Number of CUDA devices; 0 (not an error) when the driver finds none. */
    int (*count_devices)(void);
    /* Opens device `index` (0-based); the caller owns *out. */
    elag_status (*open)(int index, elag_backend **out);
    /* TF32 GEMMs on (on != 0) or off; previous setting (0/1) or a negative elag_status. */
    int (*set_tf32)(elag_backend *b, int on);
} elag_cuda_provider;

/* The table itself is `const elag_cuda_provider elag_cuda_backend_provider`
 * (host/backend/cuda/provider.c); CMakeLists.txt (ELAG_CUDA_PROVIDER_SYMBOL) and
 * cmake/elag-cuda.pc.in name it for the linker. */

#endif /* ELAG_BACKEND_CUDA_PROVIDER_H */
