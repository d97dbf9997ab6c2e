/* The step protocol: what every rank adds into the tail of its gradient
 * buffer, so that the global sums come back with the gradient, in the same
 * all-reduce (no extra round trip):
 *
 *   loss    summed per-sample loss of the step's global batch
 *   samples samples in it (the optimizer divides by this)
 *   correct correctly classified samples
 *   stop    > 0 when some rank got SIGTERM/SIGUSR1: every rank stops
 *           after this same step
 *   reconfigure  > 0 when some rank holds the roster of a newer
 *           generation: every rank switches after this same step
 *
 * The CPU step (float buffer), the --deterministic step (int64, loss in
 * fixed point) and the GPU step (float, on the device) all encode and
 * decode it here, so the layout is written once. */
#ifndef HERD_STEP_TAIL_H
#define HERD_STEP_TAIL_H

#include <stdint.h>

/* Elements after the gradient, and where each value sits (the GPU kernels
 * write the loss and correct count in place, and the GPU optimizer reads
 * the sample count in place). */
#define HERD_STEP_TAIL_LEN 5
enum {
  HERD_STEP_TAIL_LOSS = 0,
  HERD_STEP_TAIL_SAMPLES = 1,
  HERD_STEP_TAIL_CORRECT = 2,
  HERD_STEP_TAIL_STOP = 3,
  HERD_STEP_TAIL_RECONFIGURE = 4,
};

typedef struct {
  double loss_sum;    /* float buffers */
  int64_t loss_fixed; /* int64 buffers: the loss sum in fixed point, so the
                         sum is exact and the same at any world size */
  int64_t samples;
  int64_t correct;
  int stop;        /* this rank's before the SUM, any rank's after */
  int reconfigure; /* likewise */
} herd_step_tail_t;

void herd_step_tail_encode_f32(const herd_step_tail_t *tail, float *out);
void herd_step_tail_decode_f32(const float *in, herd_step_tail_t *tail);
void herd_step_tail_encode_i64(const herd_step_tail_t *tail, int64_t *out);
void herd_step_tail_decode_i64(const int64_t *in, herd_step_tail_t *tail);

#endif
