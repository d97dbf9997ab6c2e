/* herd-train's durable state: checkpoint save/resume and agreement.
 *
 * Rank 0 alone reads and writes checkpoints (data-parallel replicas are
 * identical); the others receive the state by broadcast, so a resume needs
 * the checkpoint only where rank 0 runs and every rank starts from exactly
 * the same bits. Because the state is replicated and the sampler is global
 * (a fixed global batch cut among the ranks), a checkpoint saved at one
 * world size resumes at any other: only the cut changes.
 *
 * Saves are asynchronous (herd_ckpt_writer_*): the step is blocked only for
 * the snapshot copy; completions are polled here, on the main thread,
 * because the worker runtime's report calls are not thread-safe. HDF5 is
 * only used inside the checkpoint module and by herd_dataset_load, which
 * runs before the first save, so the two never overlap.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sys/stat.h>

#include "train.h"
#include "vector_clones.h"


herd_result_t herd_train_agree(herd_train_t *train, herd_result_t rc)
{
  /* MIN over (failed ? rank : world) names the first failing rank; only it
   * returns its own error, so a failure common to all ranks (a missing data
   * file) is reported once, not N times. Doubled, with the low bit clear for
   * a configuration error, so every rank can exit 2 with it: a launcher
   * that reports one rank's status must not see "retry may help". */
  int32_t first_failed = rc == HERD_OK
                             ? 2 * train->world_size
                             : 2 * train->rank + (rc == HERD_EINVAL ? 0 : 1);
  herd_result_t comm_rc =
      herd_comm_allreduce(train->comm, &first_failed, &first_failed, 1,
                          HERD_DTYPE_I32, HERD_OP_MIN);
  if (comm_rc != HERD_OK)
    return comm_rc;
  if (first_failed == 2 * train->world_size)
    return HERD_OK;
  train->peer_usage_error = first_failed % 2 == 0;
  if (first_failed / 2 == train->rank)
    return rc;
  return herd_error_set(HERD_EPEER, "rank %d failed", (int)first_failed / 2);
}

/* Tensors of a checkpoint: parameters, optimizer buffers, optimizer step. */
static size_t s_tensors(herd_train_t *train, herd_tensor_t *tensors,
                        int64_t *optim_step)
{
  size_t n = 0;
  tensors[n++] = (herd_tensor_t){"params", HERD_DTYPE_F32, train->params,
                                 train->param_count};
  for (int i = 0; i < herd_optim_state_buffers(train->optim); i++) {
    char *name = (char *)herd_optim_state_name(train->optim, i);
    tensors[n++] = (herd_tensor_t){name, HERD_DTYPE_F32,
                                   herd_optim_state(train->optim, i),
                                   herd_optim_count(train->optim)};
  }
  tensors[n++] = (herd_tensor_t){"optim/step", HERD_DTYPE_I64, optim_step, 1};
  return n;
}

void herd_train_config_json(const herd_train_t *train, char *out, size_t cap)
{
  const herd_train_config_t *c = &train->config;
  /* train_samples: a resume checks the data cursor against the same data
   * size (train_resume.c). */
  json_t *json = json_pack(
      "{s:s, s:s, s:I, s:I, s:f, s:s, s:f, s:f, s:s, s:I, s:I, s:s, s:I}",
      "data", c->data, "hidden", c->hidden, "epochs", (json_int_t)c->epochs,
      "batch", (json_int_t)c->batch, "lr", c->lr, "optimizer", c->optimizer,
      "momentum", c->momentum, "weight_decay", c->weight_decay, "schedule",
      c->schedule, "warmup_steps", (json_int_t)c->warmup_steps, "seed",
      (json_int_t)c->seed, "backend", c->backend, "train_samples",
      (json_int_t)(train->dataset ? train->dataset->train.count : 0));
  char *text = json ? json_dumps(json, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  snprintf(out, cap, "%s", text ? text : "{}");
  free(text);
  json_decref(json);
}

/* The LR schedule and its position, so a reader sees the exact LR curve. */
static void s_schedule_json(const herd_train_t *train, char *out, size_t cap)
{
  const herd_lr_schedule_t *s = &train->schedule;
  json_t *json = json_pack(
      "{s:i, s:f, s:I, s:I, s:f, s:I, s:f, s:I, s:f}", "kind", (int)s->kind,
      "base_lr", s->base_lr, "warmup_steps", (json_int_t)s->warmup_steps,
      "total_steps", (json_int_t)s->total_steps, "min_ratio", s->min_ratio,
      "step_every", (json_int_t)s->step_every, "gamma", s->gamma, "position",
      (json_int_t)train->step, "lr", herd_lr_at(s, train->step));
  char *text = json ? json_dumps(json, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  snprintf(out, cap, "%s", text ? text : "");
  free(text);
  json_decref(json);
}

/* herd-train's RNG streams are counter based: the init stream is seeded by
 * the seed, the sampler's permutation of epoch e by (seed, e), and the
 * position in it is the step in the epoch. Those counters are the state. */
static void s_fill_meta(const herd_train_t *train, herd_ckpt_meta_t *meta)
{
  memset(meta, 0, sizeof *meta);
  meta->step = train->step;
  meta->epoch = train->epoch;
  meta->step_in_epoch = train->step_in_epoch;
  meta->rng_state[0] = (uint64_t)train->config.seed;
  meta->rng_state[1] = (uint64_t)train->epoch;
  meta->rng_state[2] = (uint64_t)train->step_in_epoch;
  meta->world_size = train->world_size;
  meta->virtual_shards = (int32_t)train->config.virtual_shards;
  herd_train_config_json(train, meta->config_json, sizeof meta->config_json);
  s_schedule_json(train, meta->lr_schedule_json,
                  sizeof meta->lr_schedule_json);
}

herd_result_t herd_train_save(herd_train_t *train)
{
  if (train->rank != 0 || !train->config.ckpt_dir)
    return HERD_OK;
  if (!train->writer)
    HERD_CHECK(herd_ckpt_writer_new(train->config.ckpt_dir,
                                    (int)train->config.keep, &train->writer));
  herd_ckpt_meta_t *meta = malloc(sizeof *meta);
  if (!meta)
    return HERD_ENOMEM;
  s_fill_meta(train, meta);
  herd_tensor_t tensors[2 + HERD_OPTIM_MAX_STATE];
  int64_t optim_step = herd_optim_step_count(train->optim);
  size_t n = s_tensors(train, tensors, &optim_step);
  /* A submit waits while the previous write is still going: the disk's
   * time, not a hang of this rank's (herd_comm_wait_begin). */
  herd_comm_wait_begin();
  herd_result_t rc = herd_ckpt_writer_submit(train->writer, meta, tensors, n);
  herd_comm_wait_end();
  free(meta);
  if (rc != HERD_OK) {
    HERD_LOG(HERD_LOG_ERROR, "train", "checkpoint at step %lld failed: %s",
             (long long)train->step, herd_error_detail());
    return rc;
  }
  train->last_ckpt_step = train->step;
  return HERD_OK;
}

/* CkptCommitted with what the save cost, for the coordinator's metrics. */
static void s_report_checkpoint(herd_train_t *train,
                                const herd_ckpt_completion_t *done)
{
  struct stat st;
  herd_ckpt_writer_stats_t stats;
  herd_ckpt_writer_stats(train->writer, &stats);
  herd_ckpt_report_t report = {
      .step = done->step, .path = done->path,
      .duration_seconds = done->write_seconds,
      .bytes = stat(done->path, &st) == 0 ? (int64_t)st.st_size : 0,
      .stall_seconds = stats.last_stall_seconds};
  herd_worker_report_checkpoint_stats(train->worker, &report);
}

void herd_train_poll_saves(herd_train_t *train, int wait)
{
  herd_ckpt_completion_t *done = NULL;
  if (!train->writer || !(done = malloc(sizeof *done)))
    return;
  if (wait) {
    herd_comm_wait_begin();
    (void)herd_ckpt_writer_wait(train->writer);
    herd_comm_wait_end();
  }
  while (herd_ckpt_writer_poll(train->writer, done)) {
    if (done->result != HERD_OK) {
      fprintf(stderr, "herd-train: checkpoint at step %lld failed (%s): %s; "
                      "training goes on\n",
              (long long)done->step, herd_err_name(done->result),
              done->detail);
      continue;
    }
    HERD_LOG(HERD_LOG_INFO, "train", "checkpoint %s committed in %.3f s",
             done->path, done->write_seconds);
    if (train->worker)
      s_report_checkpoint(train, done);
  }
  free(done);
}

/* Rank 0: picks the checkpoint per --resume and loads it. */
static herd_result_t s_load_rank0(herd_train_t *train, int64_t *header)
{
  const char *resume = train->config.resume;
  char path[4096];
  if (!strcmp(resume, "never"))
    return HERD_OK;
  if (!strcmp(resume, "auto")) {
    if (!train->config.ckpt_dir)
      return HERD_OK;
    herd_result_t rc = herd_ckpt_find_latest(train->config.ckpt_dir, path,
                                             sizeof path);
    if (rc == HERD_ENOENT)
      return HERD_OK;
    HERD_CHECK(rc);
  } else {
    snprintf(path, sizeof path, "%s", resume);
  }
  herd_ckpt_meta_t meta;
  herd_tensor_t tensors[2 + HERD_OPTIM_MAX_STATE];
  int64_t optim_step = 0;
  size_t n = s_tensors(train, tensors, &optim_step);
  /* The recorded config first: a different --hidden would otherwise fail
   * the load as a tensor size mismatch, naming no setting. A file whose
   * metadata cannot be read gets the load's own error below. */
  if (herd_ckpt_read_meta(path, &meta) == HERD_OK)
    HERD_CHECK(herd_train_check_resume_config(train, &meta, path));
  herd_result_t rc = herd_ckpt_load(path, &meta, tensors, n);
  if (rc != HERD_OK)
    return herd_error_set(rc, "cannot resume from '%s': %s", path,
                          herd_error_detail());
  HERD_CHECK(herd_train_check_resume_cursor(train, &meta, optim_step, path));
  int64_t values[HERD_TRAIN_HEADER_LEN] = {1, meta.step, meta.epoch, meta.step_in_epoch,
                                  optim_step};
  memcpy(header, values, sizeof values);
  fprintf(stderr, "herd-train: resuming from %s (step %lld, epoch %lld)\n",
          path, (long long)meta.step, (long long)meta.epoch);
  if (meta.world_size != train->world_size)
    fprintf(stderr, "herd-train: resharding: saved at world size %d, "
                    "resuming at %d\n", (int)meta.world_size,
            train->world_size);
  return HERD_OK;
}

herd_result_t herd_train_broadcast_state(herd_train_t *train, int root,
                                         int64_t *header)
{
  HERD_CHECK(herd_comm_broadcast(train->comm, header, HERD_TRAIN_HEADER_LEN,
                                 HERD_DTYPE_I64, root));
  HERD_CHECK(herd_comm_broadcast(train->comm, train->params,
                                 train->param_count, HERD_DTYPE_F32, root));
  if (!header[0])
    return HERD_OK; /* fresh start: root's initial parameters */
  for (int i = 0; i < herd_optim_state_buffers(train->optim); i++)
    HERD_CHECK(herd_comm_broadcast(train->comm, herd_optim_state(train->optim, i),
                                   herd_optim_count(train->optim),
                                   HERD_DTYPE_F32, root));
  train->step = header[1];
  train->epoch = header[2];
  train->step_in_epoch = header[3];
  herd_optim_set_step_count(train->optim, header[4]);
  return HERD_OK;
}

herd_result_t herd_train_resume(herd_train_t *train)
{
  int64_t header[HERD_TRAIN_HEADER_LEN] = {0};
  herd_result_t rc = train->rank == 0 ? s_load_rank0(train, header) : HERD_OK;
  HERD_CHECK(herd_train_agree(train, rc));
  HERD_CHECK(herd_train_broadcast_state(train, 0, header));
  train->has_state = 1;
  if (!header[0])
    return HERD_OK;
  train->resumed_from_step = train->step;
  train->last_ckpt_step = train->step;
  return HERD_OK;
}

/* One pass without branches that the compiler vectorises (an integer OR
 * may be reordered, a float sum may not): a float is NaN or infinite
 * exactly when its exponent bits are all ones. */
HERD_VECTOR_CLONES static int s_any_not_finite(const float *values,
                                               size_t count)
{
  uint32_t not_finite = 0;
  for (size_t i = 0; i < count; i++) {
    uint32_t bits;
    memcpy(&bits, &values[i], sizeof bits);
    not_finite |= (bits & 0x7f800000u) == 0x7f800000u;
  }
  return not_finite != 0;
}

herd_result_t herd_train_check_finite(const float *values, size_t count,
                                      const char *what, int64_t step)
{
  if (!s_any_not_finite(values, count))
    return HERD_OK;
  size_t first = 0;
  while (first < count && isfinite(values[first]))
    first++;
  char value[64];
  if (count > 1)
    snprintf(value, sizeof value, "element %zu is %g", first,
             first < count ? (double)values[first] : 0.0);
  else
    snprintf(value, sizeof value, "%g", (double)values[0]);
  return herd_error_set(HERD_ENONFINITE,
                        "step %lld: %s not finite (%s); stopping before it "
                        "reaches the parameters or a checkpoint (lower --lr, "
                        "or check the data)",
                        (long long)step, what, value);
}

void herd_train_step_ranges(const herd_train_t *train, size_t *begin,
                            size_t *end, size_t *global_begin,
                            size_t *global_end)
{
  size_t batch = (size_t)train->config.batch;
  herd_sampler_shard_range(train->sampler, (size_t)train->step_in_epoch, batch,
                           train->rank, train->world_size,
                           (int)train->config.virtual_shards, begin, end,
                           NULL, NULL);
  herd_sampler_global_range(train->dataset->train.count,
                            (size_t)train->step_in_epoch, batch, global_begin,
                            global_end);
}

herd_result_t herd_train_check_sums(const herd_train_t *train,
                                    const herd_step_tail_t *tail,
                                    const float *grad)
{
  int64_t step = train->step + 1;
  if (!(tail->samples > 0))
    return herd_error_set(HERD_ENONFINITE,
                          "step %lld: the global batch has no samples; "
                          "stopping",
                          (long long)step);
  float loss = (float)tail->loss_sum;
  HERD_CHECK(herd_train_check_finite(&loss, 1, "the summed loss is", step));
  return grad ? herd_train_check_finite(grad, train->param_count,
                                        "the summed gradient is", step)
              : HERD_OK;
}


