/*
 * Fashion-MNIST from a folder of IDX files, as Debian's dataset-fashion-mnist
 * installs them (/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz and
 * its three siblings). Each file is looked for gzip'd first, then unpacked; the IDX
 * reader does the rest.
 */
#define _POSIX_C_SOURCE 200809L
#include "data/dataset.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Finds "<dir>/<base>.gz" or "<dir>/<base>" into path[cap]. */
static elag_status find_file(const char *dir, const char *base, char *path, size_t cap)
{
    int len = snprintf(path, cap, "%s/%s.gz", dir, base);
    if (len < 0 || (size_t)len >= cap)
        return elag_fail(ELAG_ERR_INPUT, "fashion-mnist: folder name too long: %s", dir);
    if (is_file(path)) return ELAG_OK;
    path[len - 3] = '\0';
    if (is_file(path)) return ELAG_OK;
    return elag_fail(ELAG_ERR_INPUT,
                     "fashion-mnist: %s/%s.gz not found (install Debian's "
                     "dataset-fashion-mnist, or set data.path)",
                     dir, base);
}

elag_status elag_fashion_mnist_load(const char *dir, int train, long limit, elag_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!dir || !dir[0]) dir = ELAG_FASHION_MNIST_DIR;
    const char *prefix = train ? "train" : "t10k";
    char images[4096], labels[4096], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    elag_status st = find_file(dir, base, images, sizeof images);
    if (st != ELAG_OK) return st;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    st = find_file(dir, base, labels, sizeof labels);
    if (st != ELAG_OK) return st;
    return elag_idx_load(images, labels, limit, out);
}
