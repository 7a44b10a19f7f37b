/*
 * Scalar text -> numbers and booleans, strictly: the whole string must be the value
 * (no leading blanks, no trailing junk), out-of-range values are reported rather than
 * clamped, and non-finite floats are refused. strtoll/strtoull/strtod, never atoi/atof.
 * Also the float formatter whose output reads back to the same double.
 */
#include "config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* strto* skip leading blanks; a config value with them is not a number. */
static int cfg_starts_ok(const char *s) { return s[0] && !isspace((unsigned char)s[0]); }

int elag_cfg_parse_ll(const char *s, long long *out)
{
    if (!cfg_starts_ok(s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end) return -1;
    if (errno == ERANGE) return -2;
    *out = v;
    return 0;
}

int elag_cfg_parse_u64(const char *s, uint64_t *out)
{
    if (!cfg_starts_ok(s)) return -1;
    if (s[0] == '-') { /* strtoull would wrap "-1" to 2^64-1 */
        long long v;
        return elag_cfg_parse_ll(s, &v) == -1 ? -1 : -2;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return -1;
    if (errno == ERANGE) return -2;
    *out = (uint64_t)v;
    return 0;
}

int elag_cfg_parse_double(const char *s, double *out)
{
    if (!cfg_starts_ok(s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end) return -1;
    if (isnan(v)) return -1;
    if (isinf(v)) return strchr(s, 'i') || strchr(s, 'I') ? -1 : -2; /* "inf" vs 1e999 */
    /* ERANGE with a finite result is underflow: the nearest double is the honest value */
    *out = v;
    return 0;
}

int elag_cfg_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    char low[8] = {0}; /* zero-filled: the copy below stays NUL-terminated */
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof low) return -1;
    size_t i;
    for (i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)s[i]);
    for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!strcmp(low, yes[i])) return *out = 1, 0;
        if (!strcmp(low, no[i])) return *out = 0, 0;
    }
    return -1;
}

void elag_cfg_format_double(double v, char *buf, size_t size)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (!strpbrk(buf, ".eEnNiI") && strlen(buf) + 3 <= size) strcat(buf, ".0");
}
