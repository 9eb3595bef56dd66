/*
 * src/cluster/config_int.h - what the files of the configuration share:
 * the stored values (config.c) and the parsers of values and YAML
 * (config_value.c, config_yaml.c).
 */
#ifndef FL_CLUSTER_CONFIG_INT_H
#define FL_CLUSTER_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fling/config.h>

/* A row of the table with what the public row does not say: the range of
 * an int, duration or size key (min..max; no_zero refuses 0 inside it, as
 * heartbeat.rpc-failure-threshold's "-1 or >= 1"), or for a string key its
 * choices ("NONE|zookeeper", case-insensitive; NULL: any string). */
typedef struct fl__config_row {
    fl_config_key_t pub;
    int64_t min, max;
    bool no_zero;
    const char *choices;
} fl__config_row_t;

extern const fl__config_row_t fl__config_rows[];
extern const size_t fl__config_nrows;

/* A typed value. s is owned by whoever holds the value. */
typedef struct fl__config_val {
    int64_t i; /* int, duration (ms), size (bytes, <= INT64_MAX), bool */
    char *s;   /* string keys */
} fl__config_val_t;

/* One value and where it came from, staged before a commit. */
typedef struct fl__config_slot {
    bool set;
    fl__config_val_t val;
    fl_config_source_t src;
    char *origin;  /* "" for defaults; owned */
    uint32_t line; /* file line, for "set twice" messages */
} fl__config_slot_t;

/* A batch of values being loaded: one slot per row, applied at once by
 * fl__config_commit or dropped by fl__config_batch_fini. */
typedef struct fl__config_batch {
    fl__config_slot_t *slots; /* fl__config_nrows */
} fl__config_batch_t;

int fl__config_batch_init(fl__config_batch_t *b);
void fl__config_batch_fini(fl__config_batch_t *b);

/*
 * fl__config_stage parses value for key into the batch, from origin
 * ("conf.yaml:3", "-D") at line (0: none). dup_is_error: a key already in
 * the batch is refused (a file), else the later wins (overrides).
 * Returns FL_OK, FL_EINVAL (unknown key, bad value, twice) or FL_ENOMEM
 * with err said.
 */
int fl__config_stage(fl__config_batch_t *b, const char *key, const char *value,
                     fl_config_source_t src, const char *origin, uint32_t line,
                     bool dup_is_error, char *err, size_t errcap);

/* Moves every staged value of b into cfg; never fails. Returns how many
 * keys it set. */
size_t fl__config_commit(fl_config_t *cfg, fl__config_batch_t *b);

/* The row of key, or -1. */
int fl__config_find(const char *key);

/*
 * fl__config_parse_value parses text for row r into *out (a string is
 * copied: the caller owns out->s). Returns FL_OK, FL_EINVAL with err
 * saying the key, value, origin and expected form, or FL_ENOMEM.
 */
int fl__config_parse_value(const fl__config_row_t *r, const char *text,
                           const char *origin, fl__config_val_t *out, char *err,
                           size_t errcap);

/* The value of row r as a file would write it ("10 s", "10 mb", "true",
 * or the string unquoted) into buf; returns buf. */
const char *fl__config_format_value(const fl__config_row_t *r,
                                    const fl__config_val_t *v, char *buf,
                                    size_t cap);

/*
 * fl__config_utf8_next decodes the UTF-8 sequence at s (NUL-terminated)
 * into *cp; returns its length in bytes, or 0 if it is not valid UTF-8
 * (overlong, surrogate, beyond U+10FFFF, cut short).
 */
size_t fl__config_utf8_next(const char *s, uint32_t *cp);

/* The known key nearest to key by edit distance. */
const char *fl__config_nearest(const char *key);

/*
 * fl__config_parse_yaml parses len bytes of YAML named name into b.
 * Returns as fl__config_stage, with line and column for bad YAML.
 */
int fl__config_parse_yaml(fl__config_batch_t *b, const char *yaml, size_t len,
                          const char *name, char *err, size_t errcap);

/*
 * fl__config_validate_tls checks the rules across the security.ssl.* keys
 * (fl_config_validate's share, config_tls.c). Returns FL_OK or FL_EINVAL
 * with why.
 */
int fl__config_validate_tls(const fl_config_t *cfg, char *why, size_t why_len);

#endif
