/*
 * The bytes of one fuzz input as a file, for the readers that take a path: one memfd
 * per slot, rewritten for each input, named /proc/self/fd/N (a regular file to stat(),
 * gzopen() and fopen(); nothing touches the disk).
 */
#ifndef ELAG_FUZZ_FILE_H
#define ELAG_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#define FUZZ_FILE_SLOTS 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes data[0, size) into slot's file and returns its path (valid until the next call
 * for that slot). */
static inline const char *fuzz_file(int slot, const uint8_t *data, size_t size)
{
    static int fds[FUZZ_FILE_SLOTS] = {-1, -1};
    static char paths[FUZZ_FILE_SLOTS][48];
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("elag-fuzz", MFD_CLOEXEC);
        if (fds[slot] < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0 ||
        (size > 0 && pwrite(fds[slot], data, size, 0) != (ssize_t)size)) {
        perror("fuzz_file: writing the input");
        abort();
    }
    return paths[slot];
}

#endif
