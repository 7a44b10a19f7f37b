/*
 * elag/backend.h: devices, a thin wrapper over elag_backend_open (host/backend/).
 */
#include "api/api.h"

#include "core/check.h"

#include <stdlib.h>

elag_status elag_api_check_version(unsigned int version, unsigned int latest, const char *what)
{
    if (version >= 1 && version <= latest) return ELAG_OK;
    return elag_fail(ELAG_ERR_USAGE,
                     "%s: version %u is not one this library knows (1..%u); initialise the "
                     "struct with its _INIT macro or _options_init()",
                     what, version, latest);
}

elag_status elag_device_options_init(elag_device_options *opts, unsigned int version)
{
    if (opts == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_device_options_init: opts is NULL");
    ELAG_TRY(elag_api_check_version(version, ELAG_DEVICE_OPTIONS_VERSION, "elag_device_options"));
    elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
    *opts = d;
    return ELAG_OK;
}

elag_status elag_device_open(elag_device_t **out, const elag_device_options *opts)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_device_open: out is NULL");
    *out = NULL;
    elag_device_options o = ELAG_DEVICE_OPTIONS_INIT;
    if (opts) {
        ELAG_TRY(elag_api_check_version(opts->version, ELAG_DEVICE_OPTIONS_VERSION,
                                        "elag_device_options"));
        o = *opts;
    }
    elag_device_t *d = calloc(1, sizeof *d);
    if (d == NULL) return elag_fail(ELAG_ERR_NOMEM, "elag_device_open: out of host memory");
    elag_status st = elag_backend_open(o.device, o.threads, &d->be, d->note, sizeof d->note);
    if (st == ELAG_OK && o.tf32) st = elag_backend_set_tf32(d->be, 1);
    if (st != ELAG_OK) {
        elag_device_free(d);
        return st;
    }
    *out = d;
    return ELAG_OK;
}

void elag_device_free(elag_device_t *dev)
{
    if (dev == NULL) return;
    elag_backend_free(dev->be);
    free(dev);
}

const char *elag_device_name(const elag_device_t *dev)
{
    ELAG_ASSERT(dev != NULL);
    return dev->be->name;
}

int elag_device_is_cuda(const elag_device_t *dev)
{
    ELAG_ASSERT(dev != NULL);
    return dev->be->kind == ELAG_DEVICE_CUDA;
}

int elag_device_threads(const elag_device_t *dev)
{
    ELAG_ASSERT(dev != NULL);
    return dev->be->threads;
}

const char *elag_device_note(const elag_device_t *dev)
{
    ELAG_ASSERT(dev != NULL);
    return dev->note;
}
