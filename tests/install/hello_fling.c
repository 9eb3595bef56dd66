/*
 * hello_fling.c - the smallest program an installed fling must build and run.
 *
 * Built by tests/install/install_test.sh against the installed headers and
 * libraries (through pkg-config and through find_package, shared and
 * static). It includes only <fling/fling.h>, starts a system, prints an
 * error message and shuts the system down, checking every return code.
 * argv[1] names the variant in the output. Prints "hello_fling <variant>:
 * OK" and exits 0 on success; prints the failure and exits 1 otherwise.
 */
#include <fling/fling.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    const char *variant = argc > 1 ? argv[1] : "?";
    fl_system_opts_t opts;
    fl_system_t *sys = NULL;
    int rc;

    memset(&opts, 0, sizeof opts);
    opts.workers = 2;
    rc = fl_system_alloc(&opts, &sys);
    if (rc != FL_OK || sys == NULL) {
        fprintf(stderr, "hello_fling %s: fl_system_alloc: %s (%d)\n", variant,
                fl_strerror(rc), rc);
        return 1;
    }
    printf("hello_fling %s: fling %s, %u workers, FL_ETIMEDOUT is \"%s\"\n",
           variant, FLING_VERSION_STRING, fl_system_workers(sys),
           fl_strerror(FL_ETIMEDOUT));
    if (strcmp(fl_strerror(FL_ETIMEDOUT), "timed out") != 0 ||
        strcmp(fl_err_name(FL_ETIMEDOUT), "FL_ETIMEDOUT") != 0) {
        fprintf(stderr, "hello_fling %s: unexpected error strings\n", variant);
        fl_system_free(sys);
        return 1;
    }
    rc = fl_system_shutdown(sys);
    if (rc != FL_OK) {
        fprintf(stderr, "hello_fling %s: fl_system_shutdown: %s (%d)\n",
                variant, fl_strerror(rc), rc);
        fl_system_free(sys);
        return 1;
    }
    fl_system_free(sys);
    printf("hello_fling %s: OK\n", variant);
    return 0;
}
