/*
 * The public API's handles (include/elag/) and what the files of host/api/ share: the
 * bodies of the opaque structs, which wrap the internal objects (an elag_backend, an
 * elag_export, an elag_sparse_net), and the check of an option struct's version field.
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

/* elag_net_t: an export read by elag_export_load (host/sparse/export.h). */
struct elag_net {
    elag_export e;
};

/* ELAG_OK when an option struct's `version` is one this library knows (1..latest), else
 * ELAG_ERR_USAGE naming the struct (`what`, e.g. "elag_infer_options"). */
elag_status elag_api_check_version(unsigned int version, unsigned int latest, const char *what);

#endif /* ELAG_API_API_H */
