/*
 * `elag bench model`: placeholder until issue 4 lands.
 * TODO(owner): replace this file with the real command.
 */
#include "cli/cli.h"

int elag_cmd_bench_model(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "elag: 'bench model' is not built yet\n");
    return 1;
}
