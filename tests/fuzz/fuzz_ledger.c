/*
 * libFuzzer target: the sweep ledger reader (host/sweep/ledger.c: results.jsonl, one JSON
 * row a line, torn tails and bad lines skipped), then what `elag sweep` does with the rows
 * it kept: look each up by run id, read its status, and write results.csv (into a private
 * folder under /dev/shm, or $TMPDIR, removed at exit).
 */
#include "fuzz_file.h"
#include "sweep/sweep.h"

#include <cjson/cJSON.h>
#include <string.h>

static char csv_dir[256], csv_path[300];

static void remove_dir(void)
{
    unlink(csv_path);
    rmdir(csv_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!csv_dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        snprintf(csv_dir, sizeof csv_dir, "%s/elag-fuzz-ledger.XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(csv_dir)) abort();
        snprintf(csv_path, sizeof csv_path, "%s/results.csv", csv_dir);
        atexit(remove_dir);
    }
    const char *path = fuzz_file(0, data, size);
    elag_ledger l;
    if (elag_ledger_read(path, &l) != ELAG_OK) return 0;
    for (int i = 0; i < l.n; i++) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(l.rows[i], "run_id");
        if (!cJSON_IsString(id) || elag_ledger_find(&l, id->valuestring) != l.rows[i])
            abort(); /* every kept row is found under its own id */
        (void)elag_ledger_status(l.rows[i]);
    }
    (void)elag_ledger_write_csv(&l, csv_path);
    elag_ledger_free(&l);
    return 0;
}
