/*
 * libelag_cuda's one entry point into libelag: the table backend.c looks up through a weak
 * reference (host/backend/cuda_provider.h). Compiled into libelag_cuda only.
 */
#include "backend/cuda_provider.h"
#include "cuda/cuda_backend.h"

/* Defined here, declared weak in backend.c (no header declares it: nothing else may
 * reference it, or a CPU-only program would need libelag_cuda). */
extern const elag_cuda_provider elag_cuda_backend_provider;

const elag_cuda_provider elag_cuda_backend_provider = {
    .count_devices = elag_cuda_count_devices,
    .open = elag_cuda_backend_init,
    .set_tf32 = elag_cuda_set_tf32,
};
