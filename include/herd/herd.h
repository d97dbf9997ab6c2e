/* herd: the public C API. Include this one header. */
#ifndef HERD_H
#define HERD_H

#define HERD_VERSION "0.1.0"
#define HERD_PROTOCOL_VERSION 1

#include "herd/result.h"
#include "herd/log.h"
#include "herd/opts.h"
#include "herd/comm.h"
#include "herd/ckpt.h"
#include "herd/data.h"
#include "herd/worker.h"
#include "herd/coord.h"

#endif
