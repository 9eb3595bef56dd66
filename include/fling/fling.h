/*
 * fling/fling.h - everything public in fling, in one include.
 */
#ifndef FLING_FLING_H
#define FLING_FLING_H

#include "actor.h"
#include "cluster.h"
#include "common.h"
#include "future.h"
#include "rpc.h"
#include "signals.h"

#define FLING_VERSION_MAJOR 0
#define FLING_VERSION_MINOR 1
#define FLING_VERSION_PATCH 0
#define FLING_VERSION_STRING "0.1.0"

#endif /* FLING_FLING_H */
