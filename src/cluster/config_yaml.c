/*
 * config_yaml.c - the configuration file: YAML as Flink's conf/config.yaml
 * (libyaml's event parser), keys nested as maps or flat and dotted, every
 * value staged in a batch that is applied only if the whole file is good.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

#include "cluster/config_int.h"
#include "common/internal.h"

/* The longest dotted key and the deepest nesting a file may have; far
 * above any key fling knows, low enough to bound the walk's stack. */
#define KEY_CAP 512
#define DEPTH_MAX 32

typedef struct walk {
    yaml_parser_t parser;
    fl__config_batch_t *batch;
    const char *name;
    char key[KEY_CAP];
    char *err;
    size_t errcap;
} walk_t;

static const char *const oom = "Out of memory while loading the configuration.";

/* The next event into *ev, or the parser's error said. */
static int next(walk_t *w, yaml_event_t *ev)
{
    if (yaml_parser_parse(&w->parser, ev))
        return FL_OK;
    if (w->parser.error == YAML_MEMORY_ERROR) {
        fl__say(w->err, w->errcap, "%s", oom);
        return FL_ENOMEM;
    }
    const yaml_mark_t *m = &w->parser.problem_mark;
    fl__say(w->err, w->errcap,
            "Configuration file '%s' is not valid YAML at line %zu, column "
            "%zu: %s.",
            w->name, m->line + 1, m->column + 1,
            w->parser.problem ? w->parser.problem : "unknown error");
    return FL_EINVAL;
}

/* The line of an event, 1-based. */
static uint32_t line_of(const yaml_event_t *ev)
{
    return (uint32_t)(ev->start_mark.line + 1);
}

/* A node where a key or a value must be: refuses what fling has no use
 * for (lists, aliases), saying where. */
static int refuse_node(walk_t *w, const yaml_event_t *ev, const char *what)
{
    fl__say(w->err, w->errcap,
            "Configuration file '%s' has %s at line %zu, column %zu; fling's "
            "configuration is a map of keys to single values.",
            w->name, what, ev->start_mark.line + 1, ev->start_mark.column + 1);
    return FL_EINVAL;
}

/* Walks the pairs of a map whose MAPPING_START was read, under the dotted
 * prefix of w->key (its first plen bytes). */
static int walk_map(walk_t *w, size_t plen, int depth)
{
    for (;;) {
        yaml_event_t kev;
        int rc = next(w, &kev);
        if (rc != FL_OK)
            return rc;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return FL_OK;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            rc = refuse_node(w, &kev,
                             kev.type == YAML_ALIAS_EVENT ? "an alias as a key"
                                                          : "a key that is not "
                                                            "a plain string");
            yaml_event_delete(&kev);
            return rc;
        }
        /* The dotted key: prefix "." key. */
        const char *k = (const char *)kev.data.scalar.value;
        size_t klen = kev.data.scalar.length;
        uint32_t line = line_of(&kev);
        size_t len = plen + (plen ? 1 : 0) + klen;
        if (len >= KEY_CAP || strlen(k) != klen) {
            fl__say(w->err, w->errcap,
                    "Unknown configuration key at %s:%u: longer than %d bytes "
                    "or with a NUL byte; see docs/guide.md, Configuration.",
                    w->name, (unsigned)line, KEY_CAP - 1);
            yaml_event_delete(&kev);
            return FL_EINVAL;
        }
        if (plen)
            w->key[plen] = '.';
        memcpy(w->key + plen + (plen ? 1 : 0), k, klen);
        w->key[len] = '\0';
        yaml_event_delete(&kev);

        yaml_event_t vev;
        rc = next(w, &vev);
        if (rc != FL_OK)
            return rc;
        char origin[KEY_CAP];
        snprintf(origin, sizeof origin, "%s:%u", w->name, (unsigned)line);
        switch (vev.type) {
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)vev.data.scalar.value;
            if (vev.data.scalar.length == 0 &&
                vev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                /* An unknown key is the worse news; say it first. */
                if (fl__config_find(w->key) < 0)
                    rc =
                        fl__config_stage(w->batch, w->key, "", FL_CONFIG_FILE,
                                         origin, line, true, w->err, w->errcap);
                else {
                    fl__say(w->err, w->errcap,
                            "Configuration key '%s' (%s) has no value; give "
                            "it one or remove the line.",
                            w->key, origin);
                    rc = FL_EINVAL;
                }
            } else if (strlen(v) != vev.data.scalar.length) {
                fl__say(w->err, w->errcap,
                        "Bad value for '%s' (%s): it holds a NUL byte.", w->key,
                        origin);
                rc = FL_EINVAL;
            } else {
                rc = fl__config_stage(w->batch, w->key, v, FL_CONFIG_FILE,
                                      origin, line, true, w->err, w->errcap);
            }
            break;
        }
        case YAML_MAPPING_START_EVENT:
            if (depth >= DEPTH_MAX) {
                rc = refuse_node(w, &vev, "maps nested too deep");
                break;
            }
            rc = walk_map(w, len, depth + 1);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = refuse_node(w, &vev, "a list");
            break;
        case YAML_ALIAS_EVENT:
            rc = refuse_node(w, &vev, "an alias");
            break;
        default:
            rc = refuse_node(w, &vev, "an unexpected node");
            break;
        }
        yaml_event_delete(&vev);
        if (rc != FL_OK)
            return rc;
    }
}

static int walk_stream(walk_t *w)
{
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        int rc = next(w, &ev);
        if (rc != FL_OK)
            return rc;
        yaml_event_type_t t = ev.type;
        switch (t) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            break;
        case YAML_STREAM_END_EVENT:
            yaml_event_delete(&ev);
            return FL_OK;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = refuse_node(w, &ev, "a second document");
            break;
        case YAML_MAPPING_START_EVENT:
            w->key[0] = '\0';
            rc = walk_map(w, 0, 0);
            break;
        case YAML_SCALAR_EVENT:
            /* An empty document ("---" alone) sets nothing. */
            if (ev.data.scalar.length != 0 ||
                ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                rc = refuse_node(w, &ev, "a single value at the top");
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = refuse_node(w, &ev, "a list at the top");
            break;
        default:
            rc = refuse_node(w, &ev, "an unexpected node");
            break;
        }
        yaml_event_delete(&ev);
        if (rc != FL_OK)
            return rc;
    }
}

int fl__config_parse_yaml(fl__config_batch_t *b, const char *yaml, size_t len,
                          const char *name, char *err, size_t errcap)
{
    walk_t *w = fl__calloc(1, sizeof *w);
    if (!w) {
        fl__say(err, errcap, "%s", oom);
        return FL_ENOMEM;
    }
    if (!yaml_parser_initialize(&w->parser)) {
        fl__free(w);
        fl__say(err, errcap, "%s", oom);
        return FL_ENOMEM;
    }
    yaml_parser_set_input_string(&w->parser, (const unsigned char *)yaml, len);
    w->batch = b;
    w->name = name;
    w->err = err;
    w->errcap = errcap;
    int rc = walk_stream(w);
    yaml_parser_delete(&w->parser);
    fl__free(w);
    return rc;
}

int fl_config_load_string(fl_config_t *cfg, const char *yaml, size_t len,
                          const char *name, char *err, size_t errcap)
{
    if (!cfg || (!yaml && len > 0)) {
        fl__say(err, errcap, "fl_config_load_string needs a config and text.");
        return FL_EINVAL;
    }
    fl__config_batch_t b;
    if (fl__config_batch_init(&b) != FL_OK) {
        fl__say(err, errcap, "%s", oom);
        return FL_ENOMEM;
    }
    name = name ? name : "<string>";
    int rc =
        fl__config_parse_yaml(&b, yaml ? yaml : "", len, name, err, errcap);
    if (rc == FL_OK) {
        size_t n = fl__config_commit(cfg, &b);
        FL_LOG_KV(FL_LOG_INFO, FL_KV(FL_F("file", name), FL_FU64("keys", n)),
                  "Loaded the configuration");
    }
    fl__config_batch_fini(&b);
    return rc;
}

/* The whole of f into *out (*len bytes); errno on failure. */
static int slurp(FILE *f, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = fl__malloc(cap);
    if (!buf)
        return ENOMEM;
    for (;;) {
        if (n == cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : fl__realloc(buf, cap * 2);
            if (!nb) {
                fl__free(buf);
                return ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                int e = errno ? errno : EIO;
                fl__free(buf);
                return e;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

int fl_config_load_file(fl_config_t *cfg, const char *path, char *err,
                        size_t errcap)
{
    if (!cfg || !path) {
        fl__say(err, errcap, "fl_config_load_file needs a config and a path.");
        return FL_EINVAL;
    }
    FILE *f = fopen(path, "rb");
    int e = f ? 0 : errno;
    char *text = NULL;
    size_t len = 0;
    if (f) {
        e = slurp(f, &text, &len);
        fclose(f);
    }
    if (e == ENOMEM) {
        fl__say(err, errcap, "%s", oom);
        return FL_ENOMEM;
    }
    if (e != 0) {
        fl__say(err, errcap, "Cannot read configuration file '%s': %s.", path,
                strerror(e));
        return e == ENOENT ? FL_ENOENT : FL_ESYSTEM;
    }
    int rc = fl_config_load_string(cfg, text, len, path, err, errcap);
    fl__free(text);
    return rc;
}
