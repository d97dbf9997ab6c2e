/* Gradient all-reduce overlapped with the backward pass (DESIGN.md:
 * bucketed, as PyTorch DDP does).
 *
 * The MLP's backward pass says, layer by layer from the top and in row
 * chunks within a layer, when a range of the gradient is final
 * (herd_mlp_forward_backward_ready). Ranges arrive back to front without
 * gaps; they are gathered into buckets of --bucket-mb MiB and
 * each full bucket goes to the communicator's progress thread
 * (herd_comm_iallreduce) while this thread computes the layers below. The
 * step's extras (loss, count, correct, stop, reconfigure; train.h) sit
 * after the last parameter and ride in the first bucket. The bucket
 * boundaries depend on the layer sizes only, so every rank issues the same
 * collectives in the same order, also a rank with no samples this step.
 *
 * What is left to wait for after the backward pass is the exposed
 * communication (the step report's comm_seconds); each bucket's time on the
 * wire goes to the timeline's allreduce lane.
 */
#include "herd/clock.h"
#include "train.h"

#define TRAIN_OVERLAP_MAX_BUCKETS 256

typedef struct {
  herd_train_t *train;
  size_t lo, hi; /* final, not yet launched: [lo, hi) */
  size_t bucket; /* floats per launch */
  herd_comm_request_t *reqs[TRAIN_OVERLAP_MAX_BUCKETS];
  int n_reqs;
  herd_result_t rc; /* first launch failure */
  const double *loss_sum;
  const int *correct;
  int extras_filled;
} s_overlap_t;

/* The loss and correct count into the step tail (step_tail.h), whose
 * other values the step encoded before the backward pass began. */
static void s_fill_extras(s_overlap_t *o)
{
  float *at = o->train->grad + o->train->param_count;
  herd_step_tail_t tail;
  herd_step_tail_decode_f32(at, &tail);
  tail.loss_sum = *o->loss_sum;
  tail.correct = *o->correct;
  herd_step_tail_encode_f32(&tail, at);
  o->extras_filled = 1;
}

static void s_launch(s_overlap_t *o)
{
  if (o->hi <= o->lo || o->rc != HERD_OK)
    return;
  float *at = o->train->grad + o->lo;
  o->rc = herd_comm_iallreduce(o->train->comm, at, at, o->hi - o->lo,
                               HERD_DTYPE_F32, HERD_OP_SUM,
                               &o->reqs[o->n_reqs]);
  if (o->rc == HERD_OK)
    o->n_reqs++;
  o->hi = o->lo;
}

static void s_ready(void *arg, size_t begin, size_t end)
{
  s_overlap_t *o = arg;
  (void)end; /* == o->lo: the MLP's ranges come back to front, no gaps */
  if (!o->extras_filled)
    s_fill_extras(o); /* the loss is known once the backward pass begins */
  o->lo = begin;
  /* The last slot is kept for whatever remains at the end. */
  if (o->hi - o->lo >= o->bucket && o->n_reqs < TRAIN_OVERLAP_MAX_BUCKETS - 1)
    s_launch(o);
}

/* Waits for every bucket (also after a failure: they use the buffer);
 * returns the first error. */
static herd_result_t s_wait_all(s_overlap_t *o, int64_t step)
{
  herd_result_t first = o->rc;
  for (int i = 0; i < o->n_reqs; i++) {
    double started = 0, finished = 0;
    herd_result_t rc = herd_comm_wait_timed(&o->reqs[i], &started, &finished);
    if (rc == HERD_OK)
      herd_timeline_phase(o->train->timeline, HERD_TIMELINE_ALLREDUCE, step,
                          started, finished);
    else if (first == HERD_OK)
      first = rc;
  }
  return first;
}

herd_result_t herd_train_overlap_step(herd_train_t *train, const float *x,
                                      const uint8_t *labels, int batch,
                                      double *loss_sum, int *correct,
                                      double *backward_done_s)
{
  size_t p = train->param_count;
  s_overlap_t o = {.train = train, .lo = p, .hi = p + HERD_STEP_TAIL_LEN,
                   .bucket = (size_t)(train->config.bucket_mb * 1048576.0 /
                                      sizeof(float)),
                   .loss_sum = loss_sum, .correct = correct};
  /* A gradient that fits one bucket has nothing to overlap: one GEMM per
   * layer beats the row chunks that ready() needs. */
  int one_bucket = o.bucket >= p + HERD_STEP_TAIL_LEN;
  herd_result_t rc = herd_mlp_forward_backward_ready(
      train->mlp, train->params, x, labels, batch, train->grad, loss_sum,
      correct, one_bucket ? NULL : s_ready, &o);
  if (rc != HERD_OK) /* bad labels or no memory: found before any launch */
    return rc;
  if (!o.extras_filled)
    s_fill_extras(&o);
  o.lo = 0;
  s_launch(&o);
  *backward_done_s = herd_mono_s();
  return s_wait_all(&o, train->step + 1);
}
