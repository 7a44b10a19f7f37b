/*
 * elag_suggest (elag/common.h): the config module's "did you mean" (host/config/
 * suggest.c) for the CLI's commands and options, so one rule suggests every name.
 */
#include "elag/common.h"

#include "config/config_internal.h"

const char *elag_suggest(const char *word, const char *const *candidates, size_t n)
{
    if (word == NULL || candidates == NULL) return NULL;
    return elag_cfg_suggest(word, candidates, n);
}
