/*
 * src/common/log.h - what log.c and log_format.c share: the size of a
 * record's message and the default sink.
 */
#ifndef FL_COMMON_LOG_H
#define FL_COMMON_LOG_H

#include <fling/common.h>

/* A record's message holds at most this many bytes with its NUL: a
 * future's failure message (FL_FUTURE_MESSAGE_MAX) and some words. */
#define FL__LOG_MESSAGE_MAX 1280

/* The default sink: fl_log_format's line and a newline, written to
 * stderr with one write. Any thread. */
void fl__log_stderr(const fl_log_record_t *rec);

#endif /* FL_COMMON_LOG_H */
