/* herd-train: what a checkpoint may be resumed with (README.md, "Resuming:
 * what may change").
 *
 * A checkpoint records the config it was trained with (config_json and the
 * virtual_shards attribute) and its cursor (step, epoch, step in epoch).
 * Resuming it with another model shape, batch (the cursor counts steps of
 * it), seed (it orders each epoch's samples), optimizer, virtual shards or
 * amount of data would quietly make a model nobody asked for: those are
 * refused (HERD_EINVAL, exit 2) with both values and the ways out. Settings
 * that only steer the rest of the run (--lr, --epochs, --max-steps, ...)
 * may change; a resumed run says which did. The file passed its checksums,
 * but it may come from another program or version, so every value read
 * back is bounded before it is trusted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "train.h"

#define S_START_OVER                                                           \
  "start over with --resume never or a new --ckpt-dir (under herd run: "       \
  "--resume never or a new --run-dir)"

/* A setting the checkpoint must be resumed with. */
typedef struct {
  const char *key;  /* in config_json */
  const char *flag; /* herd-train's option */
  const char *why;
} s_fixed_t;

static const s_fixed_t s_fixed[] = {
    {"hidden", "hidden", "it is the model's shape"},
    {"batch", "batch", "the checkpoint's data cursor counts steps of it"},
    {"seed", "seed",
     "it orders each epoch's samples: another would repeat "
     "some and skip others"},
    {"optimizer", "optimizer", "the checkpoint holds that optimizer's state"},
};

/* Settings that may change; listed when they did. */
static const struct {
  const char *key, *flag;
} s_free[] = {
    {"data", "data"},
    {"epochs", "epochs"},
    {"lr", "lr"},
    {"momentum", "momentum"},
    {"weight_decay", "weight-decay"},
    {"schedule", "schedule"},
    {"warmup_steps", "warmup-steps"},
    {"backend", "backend"},
};

/* A JSON scalar as the user would type it. */
static void s_text(const json_t *value, char *out, size_t cap)
{
  if (json_is_string(value))
    snprintf(out, cap, "%s", json_string_value(value));
  else if (json_is_integer(value))
    snprintf(out, cap, "%lld", (long long)json_integer_value(value));
  else if (json_is_real(value))
    snprintf(out, cap, "%g", json_real_value(value));
  else
    snprintf(out, cap, "%s", value ? "(not a scalar)" : "(not recorded)");
}

/* "256, 0128" and "256,128" are the same model. */
static void s_canonical_hidden(const char *text, char *out, size_t cap)
{
  size_t used = 0;
  out[0] = '\0';
  for (const char *p = text; *p && used < cap;) {
    char *end = NULL;
    long width = strtol(p, &end, 10);
    if (end == p) {
      snprintf(out, cap, "%s", text); /* not ours to judge: compare as is */
      return;
    }
    used += (size_t)snprintf(out + used, cap - used, "%s%ld", used ? "," : "",
                             width);
    p = *end == ',' ? end + 1 : end;
  }
}

static int s_same(const char *key, const json_t *saved, const json_t *now)
{
  if (strcmp(key, "hidden") || !json_is_string(saved) || !json_is_string(now))
    return json_equal((json_t *)saved, (json_t *)now);
  char a[256], b[256];
  s_canonical_hidden(json_string_value(saved), a, sizeof a);
  s_canonical_hidden(json_string_value(now), b, sizeof b);
  return !strcmp(a, b);
}

static herd_result_t s_mismatch(const char *path, const char *flag,
                                const char *saved, const char *now,
                                const char *why)
{
  return herd_error_set(
      HERD_EINVAL,
      "cannot resume from '%s': it was saved with --%s %s, "
      "this run has --%s %s (%s); resume with --%s %s, or " S_START_OVER,
      path, flag, saved, flag, now, why, flag, saved);
}

static herd_result_t s_check_fixed(const json_t *saved, const json_t *now,
                                   const char *path)
{
  for (size_t i = 0; i < sizeof s_fixed / sizeof *s_fixed; i++) {
    const json_t *a = json_object_get(saved, s_fixed[i].key);
    const json_t *b = json_object_get(now, s_fixed[i].key);
    if (!a)
      return herd_error_set(HERD_EFORMAT,
                            "cannot resume from '%s': its "
                            "recorded config lacks '%s'; " S_START_OVER,
                            path, s_fixed[i].key);
    if (s_same(s_fixed[i].key, a, b))
      continue;
    if (json_typeof(a) != json_typeof(b))
      return herd_error_set(HERD_EFORMAT,
                            "cannot resume from '%s': its "
                            "recorded '%s' is malformed; " S_START_OVER,
                            path, s_fixed[i].key);
    char was[256], is[256];
    s_text(a, was, sizeof was);
    s_text(b, is, sizeof is);
    return s_mismatch(path, s_fixed[i].flag, was, is, s_fixed[i].why);
  }
  return HERD_OK;
}

/* The amount of data fixes the steps per epoch and each epoch's order.
 * Checkpoints from before train_samples was recorded skip this; their
 * cursor is still checked against the steps per epoch after loading. */
static herd_result_t s_check_samples(const json_t *saved, const json_t *now,
                                     const char *path, const char *data)
{
  const json_t *a = json_object_get(saved, "train_samples");
  const json_t *b = json_object_get(now, "train_samples");
  if (!a || json_equal((json_t *)a, (json_t *)b))
    return HERD_OK;
  return herd_error_set(HERD_EINVAL,
                        "cannot resume from '%s': it was trained on %lld "
                        "samples, this run's --data %s has %lld (the data "
                        "cursor and each epoch's order depend on the count); "
                        "resume with the same data, or " S_START_OVER,
                        path, (long long)json_integer_value(a), data,
                        (long long)json_integer_value(b));
}

static herd_result_t s_check_shards(const herd_train_t *train,
                                    const herd_ckpt_meta_t *meta,
                                    const char *path)
{
  if (meta->virtual_shards == train->config.virtual_shards)
    return HERD_OK;
  char was[32], is[32];
  snprintf(was, sizeof was, "%d", (int)meta->virtual_shards);
  snprintf(is, sizeof is, "%lld", (long long)train->config.virtual_shards);
  return s_mismatch(path, "virtual-shards", was, is,
                    "each batch is cut into these pieces and summed per "
                    "piece; --deterministic weights depend on it");
}

/* One line naming what changed but may, so a resumed run's log says so. */
static void s_note_changes(const json_t *saved, const json_t *now)
{
  char line[1024] = "", was[256], is[256];
  size_t used = 0;
  for (size_t i = 0; i < sizeof s_free / sizeof *s_free && used < sizeof line;
       i++) {
    const json_t *a = json_object_get(saved, s_free[i].key);
    const json_t *b = json_object_get(now, s_free[i].key);
    if (!a || !b || json_equal((json_t *)a, (json_t *)b))
      continue;
    s_text(a, was, sizeof was);
    s_text(b, is, sizeof is);
    used += (size_t)snprintf(line + used, sizeof line - used, "%s--%s %s -> %s",
                             used ? ", " : "", s_free[i].flag, was, is);
  }
  if (used)
    fprintf(stderr, "herd-train: resuming with changed settings: %s\n", line);
}

herd_result_t herd_train_check_resume_config(const herd_train_t *train,
                                             const herd_ckpt_meta_t *meta,
                                             const char *path)
{
  herd_result_t rc = HERD_OK;
  char now_text[sizeof meta->config_json];
  herd_train_config_json(train, now_text, sizeof now_text);
  json_t *saved = json_loads(meta->config_json, 0, NULL);
  json_t *now = json_loads(now_text, 0, NULL);
  if (!json_is_object(saved)) {
    rc = herd_error_set(HERD_EFORMAT,
                        "cannot resume from '%s': its recorded "
                        "config is not a JSON object; " S_START_OVER,
                        path);
    goto out;
  }
  if (!json_is_object(now)) {
    rc = herd_error_set(HERD_ENOMEM, "cannot describe this run's config");
    goto out;
  }
  HERD_TRY(s_check_fixed(saved, now, path));
  HERD_TRY(s_check_samples(saved, now, path, train->config.data));
  HERD_TRY(s_check_shards(train, meta, path));
  s_note_changes(saved, now);
out:
  json_decref(saved);
  json_decref(now);
  return rc;
}

/* Values no herd-train could have written (negative, past the epoch, out
 * of step with each other). */
static herd_result_t s_check_bounds(const herd_train_t *train,
                                    const herd_ckpt_meta_t *m,
                                    int64_t optim_step, const char *path)
{
  int64_t per_epoch = train->steps_per_epoch;
  if (m->step >= 0 && m->epoch >= 0 && m->step_in_epoch >= 0 &&
      m->step_in_epoch < per_epoch && optim_step >= 0 &&
      optim_step <= m->step && m->world_size >= 1 && m->virtual_shards >= 1 &&
      m->rng_state[1] == (uint64_t)m->epoch &&
      m->rng_state[2] == (uint64_t)m->step_in_epoch)
    return HERD_OK;
  return herd_error_set(
      HERD_EFORMAT,
      "cannot resume from '%s': its cursor is out of bounds (step %lld, "
      "epoch %lld, step %lld in an epoch of %lld, optimizer step %lld, "
      "world size %d, %d virtual shards); pick another checkpoint with "
      "--resume PATH, or " S_START_OVER,
      path, (long long)m->step, (long long)m->epoch,
      (long long)m->step_in_epoch, (long long)per_epoch, (long long)optim_step,
      (int)m->world_size, (int)m->virtual_shards);
}

herd_result_t herd_train_check_resume_cursor(const herd_train_t *train,
                                             const herd_ckpt_meta_t *meta,
                                             int64_t optim_step,
                                             const char *path)
{
  HERD_CHECK(s_check_bounds(train, meta, optim_step, path));
  int64_t per_epoch = train->steps_per_epoch;
  /* Steps are counted without gaps, so the cursor is the step count cut
   * into epochs; anything else was cut with another steps-per-epoch. */
  if (meta->epoch > meta->step / per_epoch ||
      meta->step - meta->epoch * per_epoch != meta->step_in_epoch)
    return herd_error_set(HERD_EINVAL,
                          "cannot resume from '%s': step %lld is not epoch "
                          "%lld + %lld steps at this run's %lld steps per "
                          "epoch (other --data or --batch?); " S_START_OVER,
                          path, (long long)meta->step, (long long)meta->epoch,
                          (long long)meta->step_in_epoch, (long long)per_epoch);
  const herd_train_config_t *c = &train->config;
  if (c->max_steps && meta->step > c->max_steps)
    return herd_error_set(
        HERD_EINVAL,
        "cannot resume from '%s': it is at step %lld, past "
        "--max-steps %lld; raise --max-steps, or " S_START_OVER,
        path, (long long)meta->step, (long long)c->max_steps);
  if (meta->step > c->epochs * per_epoch)
    return herd_error_set(HERD_EINVAL,
                          "cannot resume from '%s': it is at step %lld (epoch "
                          "%lld), past the end of --epochs %lld (step %lld); "
                          "raise --epochs, or " S_START_OVER,
                          path, (long long)meta->step, (long long)meta->epoch,
                          (long long)c->epochs,
                          (long long)(c->epochs * per_epoch));
  return HERD_OK;
}
