/*
 * address_fuzz - libFuzzer target for endpoint addresses and port ranges
 * (untrusted strings from configuration and peers). Whatever parses must
 * format back to an address that parses to the same fields; whatever does
 * not must fail with FL_EINVAL and a reason. Ids may be patterns
 * (fling://local/rm_*): they round-trip too, and are never * alone.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote/address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char why[256];
    fl__address_t a, b;
    int rc = fl__address_parse(s, &a, why, sizeof why);
    if (rc == FL_OK) {
        char out[1100];
        if (fl__address_format(&a, out, sizeof out) != FL_OK ||
            fl__address_parse(out, &b, why, sizeof why) != FL_OK ||
            memcmp(&a, &b, sizeof a) != 0)
            abort();
        /* A pattern holds a * and something else; an id matches itself
         * (a pattern without a *). */
        bool star = strchr(a.endpoint, '*') != NULL;
        if (star != a.pattern || a.endpoint[strspn(a.endpoint, "*")] == '\0')
            abort();
        if (!star && !fl__id_match(a.endpoint, a.endpoint))
            abort();
    } else if (rc != FL_EINVAL || why[0] == '\0') {
        abort();
    }
    fl__port_range_t r;
    rc = fl__port_range_parse(s, &r, why, sizeof why);
    if (rc == FL_OK) {
        uint32_t n = fl__port_range_count(&r);
        if (r.n == 0 || n == 0 || n > r.n * 65536u)
            abort();
        for (uint32_t i = 0; i < n && i < 1000; i++)
            (void)fl__port_range_at(&r, i);
    } else if (rc != FL_EINVAL ||
               strncmp(why, "Invalid port range definition: ", 31) != 0) {
        abort();
    }
    free(s);
    return 0;
}
