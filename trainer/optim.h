/* Optimizers and learning-rate schedules over flat float buffers.
 *
 * The optimizer updates one contiguous parameter array from one contiguous
 * gradient array (the all-reduced mean), so it never needs to know the model.
 * Its state is a few flat buffers of the same length plus a step count; a
 * checkpoint saves them as they are and a restore writes them back, which
 * makes a resumed run bit-identical to an uninterrupted one.
 *
 *   SGD:   g = grad + wd*p;  buf = momentum*buf + g;
 *          p -= lr * (nesterov ? g + momentum*buf : buf)      (PyTorch SGD)
 *   AdamW: p -= lr*wd*p (decoupled); m, v moments with bias correction;
 *          p -= lr * m_hat / (sqrt(v_hat) + eps)     (Loshchilov & Hutter)
 *
 * The schedule is a pure function of the step, so a resumed run only needs
 * the step number to recover the learning rate.
 *
 * Thread safety: none; an optimizer belongs to one thread.
 */
#ifndef HERD_WORKER_OPTIM_H
#define HERD_WORKER_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { HERD_OPTIM_SGD = 0, HERD_OPTIM_ADAMW = 1 } herd_optim_kind_t;

#define HERD_OPTIM_CONFIG_VERSION 1
typedef struct {
  int version; /* HERD_OPTIM_CONFIG_VERSION */
  herd_optim_kind_t kind;
  float weight_decay; /* SGD: L2 added to grad; AdamW: decoupled */
  float momentum;     /* SGD, [0, 1); 0 keeps no state */
  int nesterov;       /* SGD, needs momentum > 0 */
  float beta1, beta2; /* AdamW, [0, 1) */
  float eps;          /* AdamW, > 0 */
} herd_optim_config_t;

#define HERD_OPTIM_CONFIG_INIT                                                 \
  {                                                                            \
    HERD_OPTIM_CONFIG_VERSION, HERD_OPTIM_SGD, 0.0f, 0.9f, 0, 0.9f, 0.999f,    \
        1e-8f                                                                  \
  }

/* Maximum number of state buffers any optimizer keeps. */
#define HERD_OPTIM_MAX_STATE 2

typedef struct herd_optim herd_optim_t;

/* An optimizer for `count` parameters with zeroed state and step count 0.
 * HERD_EINVAL (with detail) for a bad config or count 0, HERD_ENOMEM.
 * Caller owns *out. */
herd_result_t herd_optim_new(const herd_optim_config_t *config, size_t count,
                             herd_optim_t **out);
/* Safe on NULL and twice; nulls *optim_p. */
void herd_optim_destroy(herd_optim_t **optim_p);

/* Applies one update with learning rate lr and increments the step count.
 * grad is the mean gradient (count floats). Can't fail. */
void herd_optim_step(herd_optim_t *optim, float *params, const float *grad,
                     float lr);
/* The same with grad scaled by grad_scale on the fly (the summed gradient
 * and 1/samples: the mean without a pass of its own). Same bits as scaling
 * grad first and calling herd_optim_step. */
void herd_optim_step_scaled(herd_optim_t *optim, float *params,
                            const float *grad, float grad_scale, float lr);

herd_optim_kind_t herd_optim_kind(const herd_optim_t *optim);
size_t herd_optim_count(const herd_optim_t *optim); /* floats per buffer */
/* Updates applied so far (AdamW's bias correction depends on it). */
int64_t herd_optim_step_count(const herd_optim_t *optim);
/* For restoring a checkpoint; step_count must be >= 0. */
void herd_optim_set_step_count(herd_optim_t *optim, int64_t step_count);
/* Number of state buffers: SGD 1 with momentum, else 0; AdamW 2. */
int herd_optim_state_buffers(const herd_optim_t *optim);
/* State buffer i (count floats), writable for restore; NULL if i is out of
 * range. Owned by the optimizer. */
float *herd_optim_state(herd_optim_t *optim, int i);
/* Stable name of buffer i for checkpoints ("momentum", "exp_avg",
 * "exp_avg_sq"); NULL if i is out of range. */
const char *herd_optim_state_name(const herd_optim_t *optim, int i);

/* ---- learning-rate schedules ---- */

typedef enum {
  HERD_LR_CONSTANT = 0,
  HERD_LR_COSINE = 1, /* to base_lr*min_ratio at total_steps */
  HERD_LR_STEP = 2    /* base_lr * gamma^floor(step / step_every) */
} herd_lr_kind_t;

typedef struct {
  herd_lr_kind_t kind;
  double base_lr;
  int64_t warmup_steps; /* linear ramp base_lr*(step+1)/warmup before */
  int64_t total_steps;  /* cosine: warmup included */
  double min_ratio;     /* cosine floor, [0, 1] */
  int64_t step_every;   /* step decay period, >= 1 */
  double gamma;         /* step decay factor, (0, 1] */
} herd_lr_schedule_t;

#define HERD_LR_SCHEDULE_INIT                                                  \
  {                                                                            \
    HERD_LR_CONSTANT, 0.1, 0, 0, 0.0, 1, 1.0                                   \
  }

/* HERD_EINVAL with a detail naming the bad field. */
herd_result_t herd_lr_validate(const herd_lr_schedule_t *schedule);
/* Learning rate for 0-based `step`; a pure function, can't fail. Warmup
 * applies to every kind; cosine holds the floor after total_steps. */
double herd_lr_at(const herd_lr_schedule_t *schedule, int64_t step);

#ifdef __cplusplus
}
#endif
#endif
