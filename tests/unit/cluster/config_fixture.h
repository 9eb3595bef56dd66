/*
 * config_fixture.h - what the configuration tests share: a fresh
 * configuration, typed getters that fail the test, a refusal checked
 * whole, the printout as a string, a temporary file.
 */
#ifndef CONFIG_FIXTURE_H
#define CONFIG_FIXTURE_H

#include "fl_test.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fling/config.h>

#include "common/internal.h"

#define ERRCAP 512

static inline fl_config_t *new_config(void)
{
    fl_config_t *cfg = fl_config_alloc();
    assert_non_null(cfg);
    return cfg;
}

static inline int64_t duration(const fl_config_t *cfg, const char *key)
{
    int64_t v = -42;
    assert_fl_ok(fl_config_get_duration_ms(cfg, key, &v));
    return v;
}

static inline int64_t int_of(const fl_config_t *cfg, const char *key)
{
    int64_t v = -42;
    assert_fl_ok(fl_config_get_int(cfg, key, &v));
    return v;
}

static inline const char *string_of(const fl_config_t *cfg, const char *key)
{
    const char *v = NULL;
    assert_fl_ok(fl_config_get_string(cfg, key, &v));
    return v;
}

static inline fl_config_source_t source_of(const fl_config_t *cfg,
                                           const char *key)
{
    fl_config_source_t src = (fl_config_source_t)-1;
    assert_fl_ok(fl_config_get_source(cfg, key, &src, NULL));
    return src;
}

/* Sets key to value and expects it refused with exactly msg. */
static inline void expect_set_refused(const char *key, const char *value,
                                      const char *msg)
{
    fl_config_t *cfg = new_config();
    char err[ERRCAP] = "";
    assert_fl(FL_EINVAL, fl_config_set(cfg, key, value, err, sizeof err));
    assert_string_equal(msg, err);
    assert_int_equal(FL_CONFIG_DEFAULT, source_of(cfg, key));
    fl_config_free(cfg);
}

/* The printout of cfg as a string (caller frees). */
static inline char *print_to_string(const fl_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_fl_ok(fl_config_print(cfg, f));
    fclose(f);
    return buf;
}

/* A temporary file holding text; its path into path (64 bytes). */
static inline void write_temp(char *path, const char *text)
{
    strcpy(path, "/tmp/fl_config_test_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    assert_int_equal(strlen(text), fwrite(text, 1, strlen(text), f));
    assert_int_equal(0, fclose(f));
}

/* ---- defaults and the table ---------------------------------------------- */

/* The accepted forms, as the messages give them. */
#define DURATION_FORM                                                          \
    "a duration such as 10 s, 500 ms or 5 min (units ms, s, min, h, d; a "     \
    "bare number is ms)"
#define SIZE_FORM                                                              \
    "a size such as 10 mb, 64 kb or 10485760b (units b, kb, mb, gb, tb; a "    \
    "bare number is bytes)"

#endif
