/*
 * `elag infer`: placeholder until its issue lands (see the issue tracker).
 * TODO(owner): replace this file with the real command.
 */
#include "cli/cli.h"

int elag_cmd_infer(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "elag: 'infer' is not built yet\n");
    return 1;
}
