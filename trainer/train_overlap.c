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
  size_t req_lo[TRAIN_OVERLAP_MAX_BUCKETS]; /* the floats each one reduces */
  size_t req_hi[TRAIN_OVERLAP_MAX_BUCKETS];
  int req_bf16[TRAIN_OVERLAP_MAX_BUCKETS]; /* sent as train->grad16 */
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

/* One all-reduce of grad[lo, hi): as it is, or rounded to bfloat16 into
 * grad16 (--grad-dtype bf16; s_wait_all widens it back). */
static void s_start(s_overlap_t *o, size_t lo, size_t hi, int bf16)
{
  herd_train_t *t = o->train;
  if (o->n_reqs >= TRAIN_OVERLAP_MAX_BUCKETS) {
    o->rc = herd_error_set(HERD_EINVAL, "train: more than %d buckets a step",
                           TRAIN_OVERLAP_MAX_BUCKETS);
    return;
  }
  int n = o->n_reqs;
  if (bf16) {
    herd_floats_to_bf16(t->grad + lo, t->grad16 + lo, hi - lo);
    o->rc = herd_comm_iallreduce(t->comm, t->grad16 + lo, t->grad16 + lo,
                                 hi - lo, HERD_DTYPE_BF16, HERD_OP_SUM,
                                 &o->reqs[n]);
  } else {
    o->rc = herd_comm_iallreduce(t->comm, t->grad + lo, t->grad + lo, hi - lo,
                                 HERD_DTYPE_F32, HERD_OP_SUM, &o->reqs[n]);
  }
  if (o->rc != HERD_OK)
    return;
  o->req_lo[n] = lo;
  o->req_hi[n] = hi;
  o->req_bf16[n] = bf16;
  o->n_reqs++;
}

/* Sends [lo, hi). With bf16 the step tail (counts, loss: above
 * param_count) goes apart, in f32, so that its sums stay exact. */
static void s_launch(s_overlap_t *o)
{
  if (o->hi <= o->lo || o->rc != HERD_OK)
    return;
  size_t p = o->train->param_count;
  if (!o->train->grad16) {
    s_start(o, o->lo, o->hi, 0);
  } else {
    if (o->hi > p)
      s_start(o, o->lo > p ? o->lo : p, o->hi, 0);
    if (o->lo < p && o->rc == HERD_OK)
      s_start(o, o->lo, o->hi < p ? o->hi : p, 1);
  }
  o->hi = o->lo;
}

static void s_ready(void *arg, size_t begin, size_t end)
{
  s_overlap_t *o = arg;
  (void)end; /* == o->lo: the MLP's ranges come back to front, no gaps */
  if (!o->extras_filled)
    s_fill_extras(o); /* the loss is known once the backward pass begins */
  o->lo = begin;
  /* The last slots are kept for whatever remains at the end. */
  if (o->hi - o->lo >= o->bucket && o->n_reqs < TRAIN_OVERLAP_MAX_BUCKETS - 2)
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
    if (rc == HERD_OK && o->req_bf16[i])
      herd_bf16_to_floats(o->train->grad16 + o->req_lo[i],
                          o->train->grad + o->req_lo[i],
                          o->req_hi[i] - o->req_lo[i]);
    if (rc == HERD_OK)
      herd_timeline_phase(o->train->timeline, HERD_TIMELINE_ALLREDUCE, step,
                          started, finished);
    else if (first == HERD_OK)
      first = rc;
  }
  return first;
}

/* The whole gradient and the step tail in one blocking all-reduce. */
static herd_result_t s_allreduce_here(herd_train_t *train,
                                      double *backward_done_s)
{
  double started = herd_mono_s();
  *backward_done_s = started;
  herd_result_t rc = herd_comm_allreduce(
      train->comm, train->grad, train->grad,
      train->param_count + HERD_STEP_TAIL_LEN, HERD_DTYPE_F32, HERD_OP_SUM);
  if (rc == HERD_OK)
    herd_timeline_phase(train->timeline, HERD_TIMELINE_ALLREDUCE,
                        train->step + 1, started, herd_mono_s());
  return rc;
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
   * layer beats the row chunks that ready() needs, and the all-reduce runs
   * on this thread, without waking the progress thread and waiting for it. */
  int one_bucket = o.bucket >= p + HERD_STEP_TAIL_LEN;
  herd_result_t rc = herd_mlp_forward_backward_ready(
      train->mlp, train->params, x, labels, batch, train->grad, loss_sum,
      correct, one_bucket ? NULL : s_ready, &o);
  if (rc != HERD_OK) /* bad labels or no memory: found before any launch */
    return rc;
  if (!o.extras_filled)
    s_fill_extras(&o);
  if (one_bucket && !train->grad16)
    return s_allreduce_here(train, backward_done_s);
  o.lo = 0;
  s_launch(&o);
  *backward_done_s = herd_mono_s();
  return s_wait_all(&o, train->step + 1);
}
