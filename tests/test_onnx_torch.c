/*
 * The PyTorch round trip (issue 13's acceptance; docs/onnx.md): runs
 * tests/integration/onnx_torch_roundtrip.py, which trains LeNet-300-100 for one epoch in
 * PyTorch, exports it with torch.onnx.export, imports it with `elag import`, checks that
 * `elag eval` gives PyTorch's test accuracy within 0.002, then prunes it to 90% with GMP
 * and fine-tunes it for one epoch with `elag train` and train.init_from. Skips visibly
 * without torch (Debian's python3-torch) for elag_test_python() or without Fashion-MNIST.
 */
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

Test(onnx_torch, lenet_round_trip_prune_finetune, .timeout = 900)
{
    if (!elag_test_python_has("torch, numpy"))
        cr_skip_test("no torch for %s (apt-get install python3-torch)", elag_test_python());
    if (access("/usr/share/datasets/fashion-mnist", R_OK) != 0)
        cr_skip_test("no Fashion-MNIST (apt-get install dataset-fashion-mnist)");
    char *dir = elag_test_tmpdir("onnx-torch");
    char cmd[3000], log[600];
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' '%s/tests/integration/onnx_torch_roundtrip.py' --elag '%s' --workdir '%s' "
             "--torch-epochs 1 --finetune-epochs 1 --threads 1",
             elag_test_python(), ELAG_SOURCE_DIR, ELAG_CLI_PATH, dir);
    int rc = elag_test_run(cmd, log);
    char *text = elag_test_slurp(log);
    cr_log_info("%s", text); /* the figures, in the verbose log */
    cr_assert_eq(rc, 0, "onnx_torch_roundtrip.py exit %d:\n%s", rc, text);
    free(text);
    elag_test_rmtree(dir);
    free(dir);
}
