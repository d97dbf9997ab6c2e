/* herd-train --timeline FILE: the step phases of one rank as a Chrome trace
 * (the JSON array format of the Trace Event Format), which Perfetto
 * (ui.perfetto.dev) and chrome://tracing open.
 *
 * Each phase is a complete event: {"name", "cat": "step", "ph": "X",
 * "ts", "dur" (microseconds; ts since the Unix epoch, so files from ranks
 * on synchronised hosts line up), "pid": rank, "tid": the phase's lane,
 * "args": {"step"}}. Lanes: 0 step (the whole step), 1 data, 2 compute
 * (forward + backward), 3 comm (the gradient all-reduce), 4 optimizer,
 * 5 checkpoint. Metadata events name the process "rank N" and the lanes.
 *
 * Rank 0 writes FILE; rank N > 0 writes FILE with ".rankN" before its
 * extension (trace.json -> trace.rank1.json), so one --timeline works for
 * every rank. Events go through a fixed 64 KiB buffer (written out when
 * full), so memory stays bounded however long the run; close writes the
 * rest and the closing bracket. A write error stops recording (logged
 * once); training never fails because of the timeline.
 *
 * Not thread-safe: one timeline per training thread.
 */
#ifndef HERD_WORKER_TIMELINE_H
#define HERD_WORKER_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

typedef struct herd_timeline herd_timeline_t;

typedef enum {
  HERD_TIMELINE_STEP = 0,
  HERD_TIMELINE_DATA,
  HERD_TIMELINE_COMPUTE,
  HERD_TIMELINE_COMM,
  HERD_TIMELINE_OPTIMIZER,
  HERD_TIMELINE_CHECKPOINT,
  HERD_TIMELINE_ALLREDUCE, /* one gradient bucket on the wire, overlapping */
  HERD_TIMELINE_PHASE_COUNT
} herd_timeline_phase_t;

/* Opens the rank's file (see above). Caller owns *out. */
herd_result_t herd_timeline_open(const char *path, int rank,
                                 herd_timeline_t **out);
/* One phase, from CLOCK_MONOTONIC seconds start_s to end_s. NULL-safe. */
void herd_timeline_phase(herd_timeline_t *timeline, herd_timeline_phase_t phase,
                         int64_t step, double start_s, double end_s);
/* A whole step from its boundaries (monotonic seconds): data t0..t1,
 * compute t1..t2, comm t2..t3, optimizer t3..t4. NULL-safe. */
void herd_timeline_step(herd_timeline_t *timeline, int64_t step, double t0,
                        double t1, double t2, double t3, double t4);
/* Writes what is buffered and the closing bracket; NULL-safe, nulls. */
void herd_timeline_close(herd_timeline_t **timeline_p);
/* The file this rank writes for `path` (rank 0: path itself). */
void herd_timeline_rank_path(const char *path, int rank, char *out, size_t cap);

#endif
