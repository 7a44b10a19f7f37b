/*
 * libFuzzer target: the config reader (elag_config_parse on the input's bytes as YAML).
 * Oracle besides the sanitizers: a config that parses is written back as YAML
 * (elag_config_to_yaml), which must parse again to the same YAML text (config.h promises
 * that round trip).
 */
#include "config/config.h"
#include "fuzz_file.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    elag_config cfg;
    if (elag_config_parse((const char *)data, size, "fuzz.yaml", NULL, 0, &cfg) != ELAG_OK)
        return 0;
    char *yaml = NULL, *again = NULL;
    if (elag_config_to_yaml(&cfg, &yaml) != ELAG_OK) return 0; /* out of memory only */
    elag_config back;
    if (elag_config_parse(yaml, strlen(yaml), "resolved.yaml", NULL, 0, &back) != ELAG_OK) {
        fprintf(stderr, "the resolved YAML does not parse: %s\n---\n%s", elag_last_error(), yaml);
        abort();
    }
    if (elag_config_to_yaml(&back, &again) == ELAG_OK && strcmp(yaml, again) != 0) {
        fprintf(stderr, "the resolved YAML changes when read back:\n---\n%s---\n%s", yaml, again);
        abort();
    }
    free(yaml);
    free(again);
    return 0;
}
