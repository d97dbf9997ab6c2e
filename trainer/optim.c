/* SGD / AdamW and learning-rate schedules (see optim.h).
 *
 * The per-step scalars (bias corrections, decay factors) are computed once in
 * double and the element loops run in float, in a fixed order, so the same
 * inputs always give the same bits: that is what lets a checkpoint restore
 * the state buffers and continue exactly where the run stopped.
 */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include "vector_clones.h"

struct herd_optim {
  herd_optim_config_t config;
  size_t count;
  int64_t step_count;
  int n_state;
  float *state[HERD_OPTIM_MAX_STATE];
};

static herd_result_t s_check_unit(const char *name, float value)
{
  if (!(value >= 0.0f && value < 1.0f))
    return herd_error_set(HERD_EINVAL, "optim: %s %g not in [0, 1)", name,
                          (double)value);
  return HERD_OK;
}

static herd_result_t s_check_config(const herd_optim_config_t *c)
{
  if (!c || c->version != HERD_OPTIM_CONFIG_VERSION)
    return herd_error_set(HERD_EINVAL, "optim: config version mismatch");
  if (!(c->weight_decay >= 0.0f && isfinite(c->weight_decay)))
    return herd_error_set(HERD_EINVAL, "optim: weight_decay %g invalid",
                          (double)c->weight_decay);
  if (c->kind == HERD_OPTIM_SGD) {
    HERD_CHECK(s_check_unit("momentum", c->momentum));
    if (c->nesterov && c->momentum == 0.0f)
      return herd_error_set(HERD_EINVAL, "optim: nesterov needs momentum");
    return HERD_OK;
  }
  if (c->kind == HERD_OPTIM_ADAMW) {
    HERD_CHECK(s_check_unit("beta1", c->beta1));
    HERD_CHECK(s_check_unit("beta2", c->beta2));
    if (!(c->eps > 0.0f))
      return herd_error_set(HERD_EINVAL, "optim: eps %g must be > 0",
                            (double)c->eps);
    return HERD_OK;
  }
  return herd_error_set(HERD_EINVAL, "optim: unknown kind %d", (int)c->kind);
}

herd_result_t herd_optim_new(const herd_optim_config_t *config, size_t count,
                             herd_optim_t **out)
{
  herd_result_t rc = HERD_OK;
  herd_optim_t *self = NULL;
  HERD_TRY(s_check_config(config));
  if (count == 0 || count > SIZE_MAX / sizeof(float)) {
    rc = herd_error_set(HERD_EINVAL, "optim: bad parameter count %zu", count);
    goto out;
  }
  self = calloc(1, sizeof(*self));
  if (!self) {
    rc = herd_error_set(HERD_ENOMEM, "optim: out of memory");
    goto out;
  }
  self->config = *config;
  self->count = count;
  if (config->kind == HERD_OPTIM_ADAMW)
    self->n_state = 2;
  else
    self->n_state = config->momentum > 0.0f ? 1 : 0;
  for (int i = 0; i < self->n_state; i++) {
    self->state[i] = calloc(count, sizeof(float));
    if (!self->state[i]) {
      rc =
          herd_error_set(HERD_ENOMEM, "optim: no memory for %zu floats", count);
      goto out;
    }
  }
  *out = self;
  self = NULL;
out:
  herd_optim_destroy(&self);
  return rc;
}

void herd_optim_destroy(herd_optim_t **optim_p)
{
  if (!optim_p || !*optim_p)
    return;
  for (int i = 0; i < HERD_OPTIM_MAX_STATE; i++)
    free((*optim_p)->state[i]);
  free(*optim_p);
  *optim_p = NULL;
}

/* The update loops run once per step over every parameter, so each is one
 * branch-free pass the compiler can vectorise (restrict: the buffers never
 * overlap; -O3 in CMakeLists.txt). grad_scale turns the summed gradient
 * into the mean inside the same pass; multiplying by 1.0f is exact, so
 * herd_optim_step gives the same bits as before. */
HERD_VECTOR_CLONES static void s_sgd(herd_optim_t *self,
                                     float *restrict params,
                                     const float *restrict grad,
                                     float grad_scale, float lr)
{
  const herd_optim_config_t *c = &self->config;
  float wd = c->weight_decay, mu = c->momentum;
  float *restrict buf = self->state[0];
  size_t n = self->count;
  if (!buf) {
    for (size_t i = 0; i < n; i++)
      params[i] -= lr * (grad[i] * grad_scale + wd * params[i]);
  } else if (c->nesterov) {
    for (size_t i = 0; i < n; i++) {
      float g = grad[i] * grad_scale + wd * params[i];
      float b = mu * buf[i] + g;
      buf[i] = b;
      params[i] -= lr * (g + mu * b);
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      float b = mu * buf[i] + (grad[i] * grad_scale + wd * params[i]);
      buf[i] = b;
      params[i] -= lr * b;
    }
  }
}

HERD_VECTOR_CLONES static void s_adamw(herd_optim_t *self,
                                       float *restrict params,
                                       const float *restrict grad,
                                       float grad_scale, float lr)
{
  const herd_optim_config_t *c = &self->config;
  float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
  double t = (double)self->step_count; /* already incremented: 1-based */
  float step_size = (float)((double)lr / (1.0 - pow((double)b1, t)));
  float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow((double)b2, t)));
  float decay = 1.0f - lr * c->weight_decay;
  float *restrict m = self->state[0], *restrict v = self->state[1];
  for (size_t i = 0; i < self->count; i++) {
    float g = grad[i] * grad_scale;
    float p = params[i] * decay;
    float mi = b1 * m[i] + (1.0f - b1) * g;
    float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = p - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
  }
}

void herd_optim_step_scaled(herd_optim_t *optim, float *params,
                            const float *grad, float grad_scale, float lr)
{
  optim->step_count++;
  if (optim->config.kind == HERD_OPTIM_ADAMW)
    s_adamw(optim, params, grad, grad_scale, lr);
  else
    s_sgd(optim, params, grad, grad_scale, lr);
}

void herd_optim_step(herd_optim_t *optim, float *params, const float *grad,
                     float lr)
{
  herd_optim_step_scaled(optim, params, grad, 1.0f, lr);
}

herd_optim_kind_t herd_optim_kind(const herd_optim_t *optim)
{
  return optim->config.kind;
}

size_t herd_optim_count(const herd_optim_t *optim) { return optim->count; }

int64_t herd_optim_step_count(const herd_optim_t *optim)
{
  return optim->step_count;
}

void herd_optim_set_step_count(herd_optim_t *optim, int64_t step_count)
{
  optim->step_count = step_count < 0 ? 0 : step_count;
}

int herd_optim_state_buffers(const herd_optim_t *optim)
{
  return optim->n_state;
}

float *herd_optim_state(herd_optim_t *optim, int i)
{
  if (i < 0 || i >= optim->n_state)
    return NULL;
  return optim->state[i];
}

const char *herd_optim_state_name(const herd_optim_t *optim, int i)
{
  static const char *const sgd[] = {"momentum"};
  static const char *const adamw[] = {"exp_avg", "exp_avg_sq"};
  if (i < 0 || i >= optim->n_state)
    return NULL;
  return optim->config.kind == HERD_OPTIM_ADAMW ? adamw[i] : sgd[i];
}

/* ---- learning-rate schedules ---- */

herd_result_t herd_lr_validate(const herd_lr_schedule_t *s)
{
  if (!(s->base_lr >= 0.0 && isfinite(s->base_lr)))
    return herd_error_set(HERD_EINVAL, "lr: base_lr %g invalid", s->base_lr);
  if (s->warmup_steps < 0)
    return herd_error_set(HERD_EINVAL, "lr: warmup_steps %lld < 0",
                          (long long)s->warmup_steps);
  if (s->kind == HERD_LR_CONSTANT)
    return HERD_OK;
  if (s->kind == HERD_LR_COSINE) {
    if (s->total_steps < 1)
      return herd_error_set(HERD_EINVAL, "lr: cosine needs total_steps >= 1");
    if (!(s->min_ratio >= 0.0 && s->min_ratio <= 1.0))
      return herd_error_set(HERD_EINVAL, "lr: min_ratio %g not in [0, 1]",
                            s->min_ratio);
    return HERD_OK;
  }
  if (s->kind == HERD_LR_STEP) {
    if (s->step_every < 1)
      return herd_error_set(HERD_EINVAL, "lr: step_every %lld < 1",
                            (long long)s->step_every);
    if (!(s->gamma > 0.0 && s->gamma <= 1.0))
      return herd_error_set(HERD_EINVAL, "lr: gamma %g not in (0, 1]",
                            s->gamma);
    return HERD_OK;
  }
  return herd_error_set(HERD_EINVAL, "lr: unknown schedule %d", (int)s->kind);
}

static double s_cosine(const herd_lr_schedule_t *s, int64_t step)
{
  int64_t span = s->total_steps - s->warmup_steps;
  double progress = span > 0 ? (double)(step - s->warmup_steps) / span : 1.0;
  if (progress < 0.0)
    progress = 0.0;
  if (progress > 1.0)
    progress = 1.0;
  double shape = 0.5 * (1.0 + cos(M_PI * progress));
  return s->min_ratio + (1.0 - s->min_ratio) * shape;
}

double herd_lr_at(const herd_lr_schedule_t *s, int64_t step)
{
  if (step < 0)
    step = 0;
  double factor = 1.0;
  if (s->kind == HERD_LR_COSINE)
    factor = s_cosine(s, step);
  else if (s->kind == HERD_LR_STEP && s->step_every > 0)
    factor = pow(s->gamma, (double)(step / s->step_every));
  /* (step+1)/warmup so the very first update already moves. */
  if (step < s->warmup_steps)
    factor *= (double)(step + 1) / (double)s->warmup_steps;
  return s->base_lr * factor;
}
