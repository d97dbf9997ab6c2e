/* The worker's link thread: the only user of the DEALER socket.
 *
 * It sends Join each time the DEALER (re)connects (the socket monitor says
 * when), carrying the generation and rank it holds, so a restarted
 * coordinator can adopt it; then heartbeats on a steady clock whether or not
 * the training step is busy (a long step must not look like a dead worker),
 * and forwards the reports and KV requests queued on the inproc PAIR (step
 * reports on a second PAIR, in batches: WORKER_STEPS_EVERY_MS). A
 * zero-length message on the first queue means "leave": because the PAIR
 * keeps order, and the step reports go first, every report queued before
 * it has been forwarded by then.
 *
 * While disconnected (coordinator dead or restarting) it sends nothing and
 * leaves the queue alone: the queue is the bounded report buffer, and on
 * reconnection Join goes out before any buffered report. libzmq reconnects
 * with exponential backoff (100 ms doubling to 1 s). A Rejoin from the
 * coordinator ("I do not know you") also triggers a Join, at most once per
 * heartbeat interval.
 *
 * Rosters and refusals from the coordinator are published under
 * worker->lock and signalled on worker->changed (herd_worker_join waits on
 * it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "herd/clock.h"
#include "herd/herd.h"
#include "runtime_internal.h"

#define LINK_FORWARD_BATCH 256


void worker_envelope_init(const herd_worker_t *worker, Herd__Envelope *env)
{
  herd__envelope__init(env);
  env->version = HERD_PROTOCOL_VERSION;
  env->job_id = worker->job_id;
}

static void s_send(herd_worker_t *worker, Herd__Envelope *env)
{
  if (herd_wire_send(worker->dealer, NULL, 0, env) != HERD_OK)
    HERD_LOG(HERD_LOG_DEBUG, WORKER_LOG, "%s not sent: %s",
             herd_wire_body_name(env), zmq_strerror(errno));
}

static void s_send_join(herd_worker_t *worker)
{
  Herd__Envelope env;
  Herd__Join join = HERD__JOIN__INIT;
  worker_envelope_init(worker, &env);
  pthread_mutex_lock(&worker->lock);
  if (worker->have_roster) {
    /* Adoptable only once its communicator formed (see
     * herd_worker_generation_formed). */
    join.rendezvous_pending =
        worker->formed_generation != worker->roster.generation;
    join.generation = worker->roster.generation;
    join.rank = worker->roster.rank;
    join.world_size = worker->roster.world_size;
  } else {
    join.rank = -1;
  }
  pthread_mutex_unlock(&worker->lock);
  join.step = atomic_load(&worker->last_step);
  worker->last_join_ms = herd_mono_ms();
  join.token = worker->token;
  join.launcher_rank = worker->launcher_rank;
  join.launcher_world_size = worker->launcher_world_size;
  join.pid = worker->pid;
  join.host = worker->host;
  env.body_case = HERD__ENVELOPE__BODY_JOIN;
  env.join = &join;
  s_send(worker, &env);
}

static void s_send_heartbeat(herd_worker_t *worker)
{
  Herd__Envelope env;
  Herd__Heartbeat heartbeat = HERD__HEARTBEAT__INIT;
  worker_envelope_init(worker, &env);
  heartbeat.step = atomic_load(&worker->last_step);
  heartbeat.waiting_ms = herd_comm_waiting_ms();
  env.body_case = HERD__ENVELOPE__BODY_HEARTBEAT;
  env.heartbeat = &heartbeat;
  s_send(worker, &env);
}

static void s_send_leave(herd_worker_t *worker)
{
  Herd__Envelope env;
  Herd__Leave leave = HERD__LEAVE__INIT;
  worker_envelope_init(worker, &env);
  leave.reason = "finished";
  env.body_case = HERD__ENVELOPE__BODY_LEAVE;
  env.leave = &leave;
  s_send(worker, &env);
}

static void s_apply_roster(herd_worker_t *worker, const Herd__Roster *r)
{
  pthread_mutex_lock(&worker->lock);
  worker->roster.generation = r->generation;
  worker->roster.rank = r->rank;
  worker->roster.world_size = r->world_size;
  worker->roster.state_source_rank = r->state_source_rank;
  worker->roster.resume_step = r->resume_step;
  worker->roster.join_timeout_ms = r->join_timeout_ms;
  if (r->join_timeout_ms > 0) /* the coordinator decides, as for heartbeats */
    worker->join_timeout_ms = r->join_timeout_ms;
  worker->have_roster = 1;
  herd_roster_t roster = worker->roster;
  herd_worker_roster_hook_t hook = worker->roster_hook;
  void *hook_arg = worker->roster_hook_arg;
  pthread_cond_broadcast(&worker->changed);
  pthread_mutex_unlock(&worker->lock);
  if (hook)
    hook(hook_arg, &roster);
  if (!worker->heartbeat_from_config && r->heartbeat_interval_ms > 0)
    worker->heartbeat_interval_ms = r->heartbeat_interval_ms;
  herd_log_set_context(r->rank, r->generation);
  HERD_LOG(HERD_LOG_INFO, WORKER_LOG,
           "roster: generation %lld rank %d/%d, heartbeat every %d ms",
           (long long)r->generation, r->rank, r->world_size,
           worker->heartbeat_interval_ms);
}

static void s_apply_refused(herd_worker_t *worker, const Herd__Refused *r)
{
  pthread_mutex_lock(&worker->lock);
  worker->refused = 1;
  worker->job_done = r->job_done;
  snprintf(worker->refused_reason, sizeof worker->refused_reason, "%s",
           r->reason);
  pthread_cond_broadcast(&worker->changed);
  pthread_mutex_unlock(&worker->lock);
  HERD_LOG(HERD_LOG_WARN, WORKER_LOG, "coordinator refused us: %s", r->reason);
}

/* Dropped by the coordinator (or unknown to a restarted one): register
 * again, at most once per heartbeat interval; it answers every heartbeat
 * of a stranger with Rejoin, so a Join held back here goes out later. Held
 * back while the training thread shows no life: a worker failed as hung in
 * its own computation would otherwise be admitted to the next generation
 * by its link thread alone, and that generation would wait for a rank that
 * cannot step. */
static void s_on_rejoin(herd_worker_t *worker)
{
  int64_t now = herd_mono_ms();
  if (now - worker->last_join_ms >= worker->heartbeat_interval_ms &&
      worker_trainer_alive(worker, now))
    s_send_join(worker);
}

static void s_handle_frame(herd_worker_t *worker, const void *data, size_t size)
{
  herd_wire_msg_t msg;
  if (herd_wire_decode(data, size, WORKER_MAX_MESSAGE_BYTES, &msg) != HERD_OK) {
    HERD_LOG(HERD_LOG_WARN, WORKER_LOG, "dropped a malformed message");
    return;
  }
  const Herd__Envelope *env = msg.env;
  /* A refusal is understood whatever its version or job id: telling a
   * worker of another job or version why it is refused is its purpose. */
  if (env->body_case == HERD__ENVELOPE__BODY_REFUSED)
    s_apply_refused(worker, env->refused);
  else if (env->version != HERD_PROTOCOL_VERSION ||
           strcmp(env->job_id, worker->job_id) != 0)
    HERD_LOG(HERD_LOG_WARN, WORKER_LOG,
             "dropped a message of version %u "
             "job '%s'",
             env->version, env->job_id);
  else if (env->body_case == HERD__ENVELOPE__BODY_ROSTER)
    s_apply_roster(worker, env->roster);
  else if (env->body_case == HERD__ENVELOPE__BODY_KV_VALUE)
    worker_kv_apply(worker, env->kv_value);
  else if (env->body_case == HERD__ENVELOPE__BODY_REJOIN)
    s_on_rejoin(worker);
  else
    HERD_LOG(HERD_LOG_DEBUG, WORKER_LOG, "ignoring %s",
             herd_wire_body_name(env));
  herd_wire_msg_clear(&msg);
}

static void s_receive_all(herd_worker_t *worker)
{
  for (;;) {
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, worker->dealer, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&frame);
      return;
    }
    s_handle_frame(worker, zmq_msg_data(&frame), zmq_msg_size(&frame));
    zmq_msg_close(&frame);
  }
}

/* Keeps a copy of a sent step report for a replay after a reconnect. */
static void s_remember_step(herd_worker_t *worker, const zmq_msg_t *frame)
{
  size_t size = zmq_msg_size(frame);
  unsigned char *copy = malloc(size);
  if (!copy)
    return;
  memcpy(copy, zmq_msg_data((zmq_msg_t *)frame), size);
  int slot = worker->replay_next;
  free(worker->replay[slot].data);
  worker->replay[slot].data = copy;
  worker->replay[slot].size = size;
  worker->replay_next = (slot + 1) % WORKER_REPLAY_STEPS;
}

/* After a reconnect: the remembered step reports again, oldest first. */
static void s_replay_steps(herd_worker_t *worker)
{
  for (int i = 0; i < WORKER_REPLAY_STEPS; i++) {
    int slot = (worker->replay_next + i) % WORKER_REPLAY_STEPS;
    if (worker->replay[slot].data)
      zmq_send(worker->dealer, worker->replay[slot].data,
               worker->replay[slot].size, ZMQ_DONTWAIT);
  }
}

void worker_replay_free(herd_worker_t *worker)
{
  for (int i = 0; i < WORKER_REPLAY_STEPS; i++) {
    free(worker->replay[i].data);
    worker->replay[i].data = NULL;
  }
}

/* Forwards what is queued on `queue` (queue_out, or steps_out whose frames
 * are step reports, kept for a replay); returns 1 when the leave marker
 * was seen, -1 when nothing was queued, 0 otherwise. */
static int s_forward(herd_worker_t *worker, void *queue, int steps)
{
  for (int i = 0; i < LINK_FORWARD_BATCH; i++) {
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, queue, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&frame);
      return i == 0 ? -1 : 0;
    }
    if (zmq_msg_size(&frame) == 0) {
      zmq_msg_close(&frame);
      return 1;
    }
    if (steps)
      s_remember_step(worker, &frame);
    if (zmq_msg_send(&frame, worker->dealer, ZMQ_DONTWAIT) < 0) {
      atomic_fetch_add(&worker->dropped_reports, 1);
      zmq_msg_close(&frame);
    }
  }
  return 0;
}

/* The batch of step reports queued so far. */
static void s_forward_steps(herd_worker_t *worker)
{
  if (s_forward(worker, worker->steps_out, 1) != -1)
    worker->steps_sent_ms = herd_mono_ms();
}

/* Other reports and KV requests, behind the step reports queued before
 * them (epoch ends and Leave come after their steps); 1 on Leave. */
static int s_forward_queued(herd_worker_t *worker)
{
  s_forward_steps(worker);
  return s_forward(worker, worker->queue_out, 0) == 1;
}

/* Connection events of the DEALER: [u16 event][u32 value] + endpoint. */
static void s_drain_monitor(herd_worker_t *worker)
{
  for (;;) {
    zmq_msg_t event, endpoint;
    zmq_msg_init(&event);
    if (zmq_msg_recv(&event, worker->monitor, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&event);
      return;
    }
    uint16_t id = 0;
    if (zmq_msg_size(&event) >= sizeof id)
      memcpy(&id, zmq_msg_data(&event), sizeof id);
    zmq_msg_close(&event);
    zmq_msg_init(&endpoint);
    zmq_msg_recv(&endpoint, worker->monitor, ZMQ_DONTWAIT);
    zmq_msg_close(&endpoint);
    if (id == ZMQ_EVENT_CONNECTED) {
      worker->connected = 1;
      s_send_join(worker); /* first, before any buffered report */
      if (worker->ever_connected)
        s_replay_steps(worker);
      worker->ever_connected = 1;
    } else if (id == ZMQ_EVENT_DISCONNECTED && worker->connected) {
      worker->connected = 0;
      HERD_LOG(HERD_LOG_WARN, WORKER_LOG,
               "lost the coordinator; buffering reports and reconnecting");
    }
  }
}

/* One wait-and-serve round; returns 1 when the worker should stop. Step
 * reports are watched only once WORKER_STEPS_EVERY_MS have passed since
 * the last batch: the first report after that goes at once, the ones that
 * follow wait for the next batch. */
static int s_link_round(herd_worker_t *worker, int64_t *next_heartbeat_ms)
{
  int64_t now = herd_mono_ms();
  int64_t wait_ms = *next_heartbeat_ms - now;
  int64_t steps_wait_ms = worker->steps_sent_ms + WORKER_STEPS_EVERY_MS - now;
  int watch_steps = worker->connected && steps_wait_ms <= 0;
  if (worker->connected && !watch_steps && steps_wait_ms < wait_ms)
    wait_ms = steps_wait_ms;
  zmq_pollitem_t items[4] = {{worker->dealer, 0, ZMQ_POLLIN, 0},
                             {worker->monitor, 0, ZMQ_POLLIN, 0},
                             {worker->queue_out, 0, ZMQ_POLLIN, 0},
                             {worker->steps_out, 0, ZMQ_POLLIN, 0}};
  /* Short cap so a stop request is seen quickly. */
  int ready = zmq_poll(items, !worker->connected ? 2 : watch_steps ? 4 : 3,
                       wait_ms < 0    ? 0
                       : wait_ms > 50 ? 50
                                      : wait_ms);
  if (ready < 0 && errno == ETERM)
    return 1;
  if (ready > 0 && (items[1].revents & ZMQ_POLLIN))
    s_drain_monitor(worker);
  if (ready > 0 && (items[0].revents & ZMQ_POLLIN))
    s_receive_all(worker);
  if (worker->connected && ready > 0 && (items[2].revents & ZMQ_POLLIN) &&
      s_forward_queued(worker)) {
    s_send_leave(worker);
    return 1;
  }
  if (worker->connected && watch_steps && ready > 0 &&
      (items[3].revents & ZMQ_POLLIN))
    s_forward_steps(worker);
  if (herd_mono_ms() >= *next_heartbeat_ms) {
    if (worker->connected)
      s_send_heartbeat(worker);
    *next_heartbeat_ms = herd_mono_ms() + worker->heartbeat_interval_ms;
  }
  return 0;
}

void *worker_link_main(void *arg)
{
  herd_worker_t *worker = arg;
  int64_t next_heartbeat_ms = herd_mono_ms() + worker->heartbeat_interval_ms;
  while (!atomic_load(&worker->stop))
    if (s_link_round(worker, &next_heartbeat_ms))
      break;
  return NULL;
}
