/* What the coordinator does with each message it accepts.
 *
 * Runs on the coordinator thread with coord->lock held. Reports drive the
 * events log and the stats; only rank 0's step/epoch/done reports count,
 * because data-parallel ranks report the same global numbers and one line
 * per step is what `herd top` and the summary want. Any message from a
 * member refreshes its heartbeat clock: a busy worker need not also send a
 * Heartbeat to stay alive, and the step it carries feeds the progress
 * watchdog. A message from an unknown sender (evicted, or from before a
 * coordinator restart) earns a Rejoin: the worker re-registers with the
 * generation and rank it holds, which is how a restarted coordinator
 * rebuilds its membership.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "herd/clock.h"
#include "coord_internal.h"
#include "herd/herd.h"

static void s_handle_join(herd_coord_t *coord, const void *id, size_t id_len,
                          const Herd__Join *join)
{
  coord_member_t *member = coord_member_find(coord, id, id_len);
  if (member) {
    if (!coord_curve_session_ok(coord, member, coord->current_user))
      return;
    /* A repeated Join (the worker's first reply got lost): answer again. */
    if (member->state == COORD_MEMBER_ACTIVE)
      coord_send_roster(coord, member);
    return;
  }
  if (coord->gen.state == COORD_JOB_FAILED) {
    coord_codec_send_refused(coord, id, id_len, coord->gen.failure);
    return;
  }
  if (coord->gen.state == COORD_JOB_FINISHED || coord->progress.done) {
    coord_codec_send_job_done(coord, id, id_len);
    return;
  }
  member = coord_member_add(coord, id, id_len, join);
  if (!member) {
    char reason[96];
    snprintf(reason, sizeof reason, "job is full (max %d workers)",
             coord->config.max_workers);
    coord_codec_send_refused(coord, id, id_len, reason);
    return;
  }
  coord_member_note_fd(coord, member, coord->current_fd);
  (void)coord_curve_session_ok(coord, member, coord->current_user); /* binds */
  /* member_joined is logged on admission, when the rank is known. */
  HERD_LOG(HERD_LOG_DEBUG, COORD_LOG,
           "worker pid %d on %s joined (claims generation %lld rank %d)",
           join->pid, member->host, (long long)join->generation, join->rank);
  coord_generation_on_join(coord, member);
}

static void s_send_kv_value(herd_coord_t *coord, const void *id, size_t id_len,
                            const char *key, uint64_t request_id, int found,
                            const coord_kv_entry_t *entry)
{
  Herd__Envelope env;
  Herd__KvValue value = HERD__KV_VALUE__INIT;
  coord_codec_envelope_init(coord, &env);
  value.key = (char *)key;
  value.found = found;
  value.request_id = request_id;
  if (entry) {
    value.value.data = entry->value;
    value.value.len = entry->len;
  }
  env.body_case = HERD__ENVELOPE__BODY_KV_VALUE;
  env.kv_value = &value;
  herd_wire_send(coord->router, id, id_len, &env);
}

void coord_kv_reply(herd_coord_t *coord, const coord_kv_wait_t *wait)
{
  const coord_kv_entry_t *e =
      coord_kv_get(&coord->kv, wait->generation, wait->key);
  s_send_kv_value(coord, wait->routing_id, wait->routing_id_len, wait->key,
                  wait->request_id, e != NULL, e);
}

void coord_kv_service(herd_coord_t *coord, int64_t now_ms)
{
  coord_kv_wait_t wait;
  /* Gets of a generation older than the current one can never be served. */
  int64_t min_generation = coord->gen.number;
  for (int i = 0; i < COORD_KV_MAX_WAITS &&
                  coord_kv_wait_take(&coord->kv, now_ms, min_generation, &wait);
       i++)
    coord_kv_reply(coord, &wait);
}

static void s_handle_kv_set(herd_coord_t *coord, coord_member_t *member,
                            const Herd__KvSet *set)
{
  herd_result_t rc = coord_kv_set(&coord->kv, set->generation, set->key,
                                  set->value.data, set->value.len);
  if (rc != HERD_OK)
    HERD_LOG(HERD_LOG_WARN, COORD_LOG, "KV set of '%.64s' from pid %d: %s",
             set->key, member->pid, herd_error_detail());
  if (set->request_id)
    s_send_kv_value(coord, member->routing_id, member->routing_id_len,
                    set->key, set->request_id, rc == HERD_OK, NULL);
  if (rc == HERD_OK)
    coord_kv_service(coord, herd_mono_ms());
}

static void s_handle_kv_get(herd_coord_t *coord, coord_member_t *member,
                            const Herd__KvGet *get)
{
  coord_kv_wait_t wait;
  size_t key_len = strlen(get->key);
  memcpy(wait.routing_id, member->routing_id, member->routing_id_len);
  wait.routing_id_len = member->routing_id_len;
  wait.generation = get->generation;
  wait.request_id = get->request_id;
  snprintf(wait.key, sizeof wait.key, "%s", get->key);
  int wait_ms = get->wait_ms < 0 ? 0 : get->wait_ms > 600000 ? 600000
                                                             : get->wait_ms;
  wait.deadline_ms = herd_mono_ms() + wait_ms;
  if (key_len > COORD_KV_KEY_MAX ||
      coord_kv_get(&coord->kv, wait.generation, wait.key) || wait_ms == 0 ||
      coord_kv_wait_add(&coord->kv, &wait) != HERD_OK)
    coord_kv_reply(coord, &wait);
}

/* Model FLOP utilization at this step: {"model_flops_per_second", "mfu"}
 * for the step event (NULL when the workers report no FLOP). */
static json_t *s_note_mfu(herd_coord_t *coord, const Herd__StepReport *r)
{
  coord_progress_t *p = &coord->progress;
  double achieved = r->samples_per_second * r->flops_per_sample;
  if (!(achieved > 0) || !isfinite(achieved))
    return NULL;
  double peak = coord_metrics_job_peak(coord, herd_mono_ms());
  p->model_flops_per_second = achieved;
  p->peak_flops_per_second = peak;
  p->mfu = peak > 0 ? achieved / peak : -1;
  if (p->mfu >= 0) {
    p->mfu_sum += p->mfu;
    p->mfu_n++;
  }
  return json_pack("{s:f, s:o}", "model_flops_per_second", achieved, "mfu",
                   p->mfu >= 0 ? json_real(p->mfu) : json_null());
}

static void s_handle_step(herd_coord_t *coord, const Herd__StepReport *r)
{
  coord->progress.step_logged = r->step;
  if (r->step > coord->progress.step)
    coord->progress.step = r->step;
  coord->progress.epoch = r->epoch;
  coord->progress.loss = r->loss;
  coord->progress.samples_per_second = r->samples_per_second;
  json_t *mfu_json = s_note_mfu(coord, r);
  json_t *line = json_pack(
      "{s:I, s:I, s:I, s:i, s:o, s:o, s:I, s:I}", "step", (json_int_t)r->step,
      "epoch", (json_int_t)r->epoch, "generation", (json_int_t)r->generation,
      "world_size", r->world_size, "loss", coord_json_real(r->loss),
      "samples_per_second", coord_json_real(r->samples_per_second),
      "sample_begin", (json_int_t)r->sample_begin, "sample_end",
      (json_int_t)r->sample_end);
  if (line && mfu_json)
    json_object_update(line, mfu_json);
  json_decref(mfu_json);
  coord_events_write(&coord->events, "step", line);
}

static void s_handle_epoch(herd_coord_t *coord, const Herd__EpochEnd *e)
{
  coord->progress.epoch = e->epoch;
  coord->progress.test_accuracy = e->test_accuracy;
  coord_events_write(&coord->events, "epoch_end",
                     json_pack("{s:I, s:o, s:o}", "epoch", (json_int_t)e->epoch,
                               "test_accuracy",
                               coord_json_real(e->test_accuracy), "test_loss",
                               coord_json_real(e->test_loss)));
}

static void s_handle_checkpoint(herd_coord_t *coord,
                                const Herd__CkptCommitted *c)
{
  if (coord_events_add_checkpoint(&coord->events, c->path) != HERD_OK)
    HERD_LOG(HERD_LOG_WARN, COORD_LOG, "checkpoint list full or no memory");
  coord_events_write(&coord->events, "checkpoint_committed",
                     json_pack("{s:I, s:o}", "step", (json_int_t)c->step,
                               "path", coord_json_string(c->path)));
}

/* Rank 0 finished the job. Every other member is told so: those that
 * trained with it are finishing anyway, and one admitted to a generation
 * that formed just before the end (its rendezvous waits for ranks that
 * are leaving) exits cleanly instead of waiting out the join timeout. */
static void s_tell_job_done(herd_coord_t *coord, const coord_member_t *sender)
{
  for (int i = 0; i < coord->members.capacity; i++) {
    const coord_member_t *m = &coord->members.slot[i];
    if (m->in_use && m != sender)
      coord_codec_send_job_done(coord, m->routing_id, m->routing_id_len);
  }
}

static void s_handle_done(herd_coord_t *coord, const coord_member_t *sender,
                          const Herd__Done *d)
{
  if (!coord->progress.done)
    s_tell_job_done(coord, sender);
  coord->progress.have_done = 1;
  coord->progress.report.final_step = d->final_step;
  coord->progress.report.epochs = d->epochs;
  coord->progress.report.test_accuracy = d->test_accuracy;
  coord->progress.report.samples_per_second = d->samples_per_second;
  coord->progress.report.world_size = d->world_size;
  coord->progress.report.resumed_from_step = d->resumed_from_step;
  snprintf(coord->progress.report.param_sha256,
           sizeof coord->progress.report.param_sha256, "%s",
           d->param_sha256 ? d->param_sha256 : "");
  coord->progress.done = 1;
  coord->progress.test_accuracy = d->test_accuracy;
  if (d->final_step > coord->progress.step)
    coord->progress.step = d->final_step;
}

static void s_handle_peer_failed(herd_coord_t *coord, const Herd__PeerFailed *p)
{
  if (p->generation != coord->gen.number)
    return; /* about an old generation: already handled */
  coord_member_t *peer = coord_member_by_rank(coord, p->rank);
  if (!peer)
    return;
  char reason[192];
  snprintf(reason, sizeof reason, "peer reported: %.160s", p->reason);
  coord_member_fail(coord, peer, "peer_report", reason);
}

/* Reports from a member; rank-0-only ones are filtered here. */
static void s_handle_member_message(herd_coord_t *coord, coord_member_t *member,
                                    const Herd__Envelope *env)
{
  int is_rank0 = member->state == COORD_MEMBER_ACTIVE && member->rank == 0;
  switch (env->body_case) {
  case HERD__ENVELOPE__BODY_HEARTBEAT:
    coord_detect_step(coord, member, env->heartbeat->step, herd_mono_ms());
    coord_detect_waiting(member, env->heartbeat->waiting_ms, herd_mono_ms());
    break;
  case HERD__ENVELOPE__BODY_STEP_REPORT:
    coord_detect_step(coord, member, env->step_report->step, herd_mono_ms());
    /* Before s_handle_step moves stats.step on. */
    coord_metrics_on_step(coord, member, env->step_report);
    /* The first report of each step from any member, not only rank 0's:
     * after a failure the state may come from a rank whose all-reduce
     * finished when rank 0's did not, and its step must still be logged.
     * A redone step (same number, same samples) is logged once. Members
     * re-registering with a restarted coordinator (not yet re-admitted)
     * count too: their buffered reports are steps they committed. */
    if ((member->state == COORD_MEMBER_ACTIVE ||
         (member->state != COORD_MEMBER_FAILED &&
          member->claimed_generation > 0)) &&
        env->step_report->step > coord->progress.step_logged)
      s_handle_step(coord, env->step_report);
    break;
  case HERD__ENVELOPE__BODY_EPOCH_END:
    if (is_rank0)
      s_handle_epoch(coord, env->epoch_end);
    break;
  case HERD__ENVELOPE__BODY_CKPT_COMMITTED:
    s_handle_checkpoint(coord, env->ckpt_committed);
    coord_metrics_on_checkpoint(coord, env->ckpt_committed);
    break;
  case HERD__ENVELOPE__BODY_DONE:
    if (is_rank0)
      s_handle_done(coord, member, env->done);
    break;
  case HERD__ENVELOPE__BODY_LEAVE: {
    int was_admitted = member->state == COORD_MEMBER_ACTIVE;
    coord_member_leave(coord, member);
    /* Leaving mid-job shrinks the job; leaving at its end ("finished",
     * what herd_worker_leave sends, possibly before rank 0's Done has
     * arrived) does not, or every job would end in a cascade of rosters. */
    if (was_admitted && !coord->progress.done &&
        strcmp(env->leave->reason, "finished") != 0)
      coord_generation_on_lost(coord);
    break;
  }
  case HERD__ENVELOPE__BODY_PEER_FAILED:
    s_handle_peer_failed(coord, env->peer_failed);
    break;
  case HERD__ENVELOPE__BODY_KV_SET:
    s_handle_kv_set(coord, member, env->kv_set);
    break;
  case HERD__ENVELOPE__BODY_KV_GET:
    s_handle_kv_get(coord, member, env->kv_get);
    break;
  default:
    /* Coordinator-to-worker bodies. */
    HERD_LOG(HERD_LOG_DEBUG, COORD_LOG, "ignoring %s from pid %d",
             herd_wire_body_name(env), member->pid);
    break;
  }
}

static void s_send_rejoin(herd_coord_t *coord, const void *id, size_t id_len)
{
  Herd__Envelope env;
  Herd__Rejoin rejoin = HERD__REJOIN__INIT;
  coord_codec_envelope_init(coord, &env);
  rejoin.reason = "not a member of this job: re-register";
  env.body_case = HERD__ENVELOPE__BODY_REJOIN;
  env.rejoin = &rejoin;
  herd_wire_send(coord->router, id, id_len, &env);
}

static void s_dispatch(herd_coord_t *coord, const void *id, size_t id_len,
                       const Herd__Envelope *env)
{
  if (env->body_case == HERD__ENVELOPE__BODY_JOIN) {
    s_handle_join(coord, id, id_len, env->join);
    return;
  }
  if (env->body_case == HERD__ENVELOPE__BODY_STATUS_REQUEST) {
    coord_status_reply(coord, id, id_len);
    return;
  }
  coord_member_t *member = coord_member_find(coord, id, id_len);
  if (!member) {
    /* Evicted (declared dead) or from before a coordinator restart: ask it
     * to re-register. Leave from a stranger needs no answer. */
    if (env->body_case != HERD__ENVELOPE__BODY_LEAVE)
      s_send_rejoin(coord, id, id_len);
    return;
  }
  if (!coord_curve_session_ok(coord, member, coord->current_user))
    return; /* another key acting for this member: nothing it says counts */
  coord_detect_heard(coord, member,
                     env->body_case == HERD__ENVELOPE__BODY_HEARTBEAT,
                     herd_mono_ms());
  coord_member_note_fd(coord, member, coord->current_fd);
  s_handle_member_message(coord, member, env);
}

void coord_handle_frame(herd_coord_t *coord, const void *routing_id,
                        size_t routing_id_len, const void *data, size_t size)
{
  herd_wire_msg_t msg;
  char reason[160];
  herd_result_t rc = coord_codec_decode(&coord->limits, data, size, &msg,
                                        reason, sizeof reason);
  if (rc == HERD_ETOOBIG || rc == HERD_EFORMAT) {
    /* A flood of garbage must not become a flood of log lines. */
    int64_t count = ++coord->malformed_messages;
    HERD_LOG(count % 100 == 1 ? HERD_LOG_WARN : HERD_LOG_DEBUG, COORD_LOG,
             "dropped malformed message (%lld so far): %s", (long long)count,
             reason);
    return;
  }
  if (rc != HERD_OK) {
    HERD_LOG(HERD_LOG_WARN, COORD_LOG, "refused %s: %s",
             herd_wire_body_name(msg.env), reason);
    coord_codec_send_refused(coord, routing_id, routing_id_len, reason);
  } else {
    s_dispatch(coord, routing_id, routing_id_len, msg.env);
  }
  herd_wire_msg_clear(&msg);
}
