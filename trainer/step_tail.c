/* The step protocol's encoding (step_tail.h). Counts travel as floats in
 * the float buffer: exact up to 2^24 samples per step, far above any
 * batch herd-train takes. */
#include "step_tail.h"

void herd_step_tail_encode_f32(const herd_step_tail_t *tail, float *out)
{
  out[HERD_STEP_TAIL_LOSS] = (float)tail->loss_sum;
  out[HERD_STEP_TAIL_SAMPLES] = (float)tail->samples;
  out[HERD_STEP_TAIL_CORRECT] = (float)tail->correct;
  out[HERD_STEP_TAIL_STOP] = tail->stop ? 1.0f : 0.0f;
  out[HERD_STEP_TAIL_RECONFIGURE] = tail->reconfigure ? 1.0f : 0.0f;
}

void herd_step_tail_decode_f32(const float *in, herd_step_tail_t *tail)
{
  *tail = (herd_step_tail_t){
      .loss_sum = in[HERD_STEP_TAIL_LOSS],
      .samples = (int64_t)in[HERD_STEP_TAIL_SAMPLES],
      .correct = (int64_t)in[HERD_STEP_TAIL_CORRECT],
      .stop = in[HERD_STEP_TAIL_STOP] > 0,
      .reconfigure = in[HERD_STEP_TAIL_RECONFIGURE] > 0};
}

void herd_step_tail_encode_i64(const herd_step_tail_t *tail, int64_t *out)
{
  out[HERD_STEP_TAIL_LOSS] = tail->loss_fixed;
  out[HERD_STEP_TAIL_SAMPLES] = tail->samples;
  out[HERD_STEP_TAIL_CORRECT] = tail->correct;
  out[HERD_STEP_TAIL_STOP] = tail->stop != 0;
  out[HERD_STEP_TAIL_RECONFIGURE] = tail->reconfigure != 0;
}

void herd_step_tail_decode_i64(const int64_t *in, herd_step_tail_t *tail)
{
  *tail = (herd_step_tail_t){.loss_fixed = in[HERD_STEP_TAIL_LOSS],
                             .samples = in[HERD_STEP_TAIL_SAMPLES],
                             .correct = in[HERD_STEP_TAIL_CORRECT],
                             .stop = in[HERD_STEP_TAIL_STOP] > 0,
                             .reconfigure =
                                 in[HERD_STEP_TAIL_RECONFIGURE] > 0};
}
