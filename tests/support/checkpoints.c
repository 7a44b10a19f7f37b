/* Training a run two ways, and checks on its checkpoints (checkpoints.h). */
#include "support/checkpoints.h"

#include "core/check.h"
#include "support/testutil.h"
#include "train/trainer.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct stop_at {
    long step;
    volatile sig_atomic_t *flag;
} stop_at;

static void stop_when(const elag_progress *p, void *user)
{
    stop_at *s = user;
    if (p->step >= s->step) *s->flag = SIGINT;
}

elag_status elag_test_train_mode(const elag_config *base, elag_sparse_compute mode, int threads,
                                 const char *dir, const char *resume, long interrupt_at,
                                 int *live)
{
    elag_config cfg = *base;
    cfg.train.sparse_compute = mode;
    elag_backend *be;
    cr_assert_eq(elag_backend_open(cfg.device, threads, &be, NULL, 0), ELAG_OK, "%s",
                 elag_last_error());
    elag_run_data data;
    cr_assert_eq(elag_run_data_load(&cfg, &data), ELAG_OK, "%s", elag_last_error());
    volatile sig_atomic_t flag = 0;
    stop_at s = {interrupt_at, &flag};
    elag_train_options opts = {.out_dir = dir, .resume_path = resume};
    if (interrupt_at > 0) {
        opts.progress = stop_when;
        opts.progress_user = &s;
        opts.interrupt = &flag;
    }
    elag_trainer *t = NULL;
    elag_train_summary sum;
    elag_status st = elag_trainer_init(&t, &cfg, be, &data, &opts);
    if (st == ELAG_OK) st = elag_trainer_run(t, &sum);
    if (live) *live = t ? t->sparse.n_live : -1;
    elag_trainer_free(t);
    elag_run_data_free(&data);
    elag_backend_free(be);
    return st;
}

elag_st_file *elag_test_open_checkpoint(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    elag_st_file *f;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    return f;
}

int elag_test_compare_checkpoints(const char *a_dir, const char *b_dir, double abs_tol,
                                  double rel_tol)
{
    elag_st_file *a = elag_test_open_checkpoint(a_dir), *b = elag_test_open_checkpoint(b_dir);
    cr_assert_eq(elag_st_count(a), elag_st_count(b));
    int n = 0;
    for (int i = 0; i < elag_st_count(a); i++) {
        const elag_st_tensor *x = elag_st_at(a, i), *y = elag_st_find(b, x->name);
        cr_assert_not_null(y, "%s missing from %s", x->name, b_dir);
        cr_assert_eq(x->nbytes, y->nbytes);
        if (x->dtype != ELAG_DTYPE_F32) {
            cr_assert_eq(memcmp(x->data, y->data, x->nbytes), 0, "%s differs", x->name);
            continue;
        }
        size_t bad = elag_test_compare(x->name, x->data, y->data, x->nbytes / sizeof(float),
                                       abs_tol, rel_tol);
        cr_expect_eq(bad, 0, "%s: %zu entries differ between the two runs", x->name, bad);
        n++;
    }
    elag_st_close(a);
    elag_st_close(b);
    return n;
}

size_t elag_test_pruned_are_zero(const char *dir, const char *prefix)
{
    elag_st_file *f = elag_test_open_checkpoint(dir);
    size_t pruned = 0;
    for (int i = 0; i < elag_st_count(f); i++) {
        const elag_st_tensor *mk = elag_st_at(f, i);
        const size_t len = strlen(mk->name);
        if (strncmp(mk->name, prefix, strlen(prefix)) != 0 || len < 5 ||
            strcmp(mk->name + len - 5, ".mask") != 0)
            continue;
        static const char *const kinds[] = {"", ".momentum", ".exp_avg", ".exp_avg_sq"};
        for (int q = 0; q < 4; q++) {
            char want[192];
            snprintf(want, sizeof want, "%.*s.weight%s", (int)(len - 5), mk->name, kinds[q]);
            const elag_st_tensor *x = elag_st_find(f, want);
            if (!x) continue;
            cr_assert_eq(x->nbytes / sizeof(float), mk->nbytes);
            const unsigned char *m = mk->data;
            const float *v = x->data;
            for (size_t e = 0; e < mk->nbytes; e++) {
                if (m[e]) continue;
                uint32_t bits;
                memcpy(&bits, &v[e], sizeof bits);
                cr_assert_eq(bits, 0u, "%s[%zu] = %g where the mask is 0", want, e, v[e]);
                pruned++;
            }
        }
    }
    elag_st_close(f);
    return pruned;
}
