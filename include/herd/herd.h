/* herd: what a training program includes: results, logging, option
 * tables, the collectives, checkpoints, datasets and the worker runtime.
 * Each is also a header of its own (herd/comm.h, herd/worker.h, ...), for a
 * program that uses only some. The coordinator's API (herd/coord.h: what
 * `herd run` and `herd coord` embed) is not part of it. */
#ifndef HERD_H
#define HERD_H

#include "herd/version.h"
#include "herd/result.h"
#include "herd/log.h"
#include "herd/opts.h"
#include "herd/comm.h"
#include "herd/ckpt.h"
#include "herd/data.h"
#include "herd/worker.h"

#endif
