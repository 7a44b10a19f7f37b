/*
 * The public API's handles (include/elag/) and what the files of host/api/ share: the
 * bodies of the opaque structs that wrap internal objects (an elag_backend, an
 * elag_export; the others are private to their file), and the check of an option
 * struct's version field. Two handles are the internal objects themselves, declared
 * opaque in include/elag/sweep.h: elag_sweep_t (host/sweep/sweep.h's elag_sweep) and
 * elag_sweep_job_t (its elag_sweep_job).
 */
#ifndef ELAG_API_API_H
#define ELAG_API_API_H

#include "elag/elag.h"

#include "backend/backend.h"
#include "sparse/export.h"

/* elag_device_t */
struct elag_device {
    elag_backend *be; /* owned */
    char note[256];   /* what "auto" chose, or "" */
};

/* elag_net_t: an export read by elag_export_load, or a checkpoint read by
 * elag_export_from_checkpoint (host/sparse/export.h). */
struct elag_net {
    elag_export e;
    elag_export_timing *timings; /* (e.n_tensors) after an "auto" conversion, else NULL */
    char auto_note[256];         /* what "auto" compared for the whole net, or "" */
};

/* Tensor index (into net->e.t) of weight i, or -1 when there is no weight i. */
int elag_api_weight_tensor(const elag_net_t *net, int i);

/* ELAG_OK when an option struct's `version` is one this library knows (1..latest), else
 * ELAG_ERR_USAGE naming the struct (`what`, e.g. "elag_infer_options"). */
elag_status elag_api_check_version(unsigned int version, unsigned int latest, const char *what);

/* 1 if path exists and is a non-empty directory or a non-directory (a run or output folder
 * that --force would have to replace); api/train.c. */
int elag_api_path_in_use(const char *path);

#endif /* ELAG_API_API_H */
