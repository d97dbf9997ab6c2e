/* Coordinator lifecycle, its thread, and the public API (herd/coord.h).
 *
 * herd_coord_new binds the ROUTER on the caller's thread, so a bad address
 * or busy port is reported to the caller instead of dying in the background,
 * then hands the socket to the coordinator thread, which alone uses it from
 * then on. The thread polls with a timeout of a fraction of the heartbeat
 * interval; each wake-up drains the socket and runs a tick (heartbeat and
 * join timeouts, forming generations), all under coord->lock.
 *
 * Two size limits protect the coordinator: frames above max_message_bytes
 * are counted and dropped before decoding (coord_codec.c), and ZMQ_MAXMSGSIZE
 * makes libzmq disconnect a peer that sends something absurdly large, so
 * such a frame is never even buffered.
 *
 * Each wake-up reads a batch of messages first, then the ROUTER monitor's
 * connection events, then handles the batch. That order lets a closed
 * connection be pinned on the right member even when the kernel reuses its
 * fd at once: every message in the batch was read after the events of the
 * connection it came from were emitted (coord_members.c, coord_detect.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "herd/clock.h"
#include "coord_internal.h"
#include "herd/net.h"
#include "herd/version.h"
#include "herd/herd.h"

#define COORD_DRAIN_BATCH 256
#define COORD_HARD_MAX_BYTES ((int64_t)1 << 20)

/* ---- the coordinator thread -------------------------------------------- */

static void s_drain_extra_parts(void *router)
{
  int more = 1;
  while (more) {
    zmq_msg_t part;
    zmq_msg_init(&part);
    more =
        zmq_msg_recv(&part, router, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&part);
    zmq_msg_close(&part);
  }
}

typedef struct {
  zmq_msg_t id, body;
  int ok; /* exactly two parts */
} s_frame_t;

/* Receives one message into *frame; returns 0 when none was waiting. */
static int s_receive_one(herd_coord_t *coord, s_frame_t *frame)
{
  zmq_msg_init(&frame->id);
  zmq_msg_init(&frame->body);
  if (zmq_msg_recv(&frame->id, coord->router, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&frame->id);
    zmq_msg_close(&frame->body);
    return 0;
  }
  /* Parts of a multipart message arrive together: no wait needed. */
  frame->ok = zmq_msg_more(&frame->id) &&
              zmq_msg_recv(&frame->body, coord->router, ZMQ_DONTWAIT) >= 0;
  if (frame->ok && zmq_msg_more(&frame->body)) {
    s_drain_extra_parts(coord->router);
    frame->ok = 0; /* a worker sends exactly one frame */
  }
  return 1;
}

static void s_handle_one(herd_coord_t *coord, s_frame_t *frame)
{
  if (frame->ok) {
    coord->current_fd = zmq_msg_get(&frame->body, ZMQ_SRCFD);
    const char *user = coord->zap ? zmq_msg_gets(&frame->body, "User-Id")
                                  : NULL;
    coord->current_user = user ? user : "";
    coord_handle_frame(coord, zmq_msg_data(&frame->id),
                       zmq_msg_size(&frame->id), zmq_msg_data(&frame->body),
                       zmq_msg_size(&frame->body));
  } else {
    coord->malformed_messages++;
  }
  coord->current_user = "";
  zmq_msg_close(&frame->id);
  zmq_msg_close(&frame->body);
}

/* Connection events: [u16 event][u32 value = fd] + an endpoint frame. */
static void s_drain_monitor(herd_coord_t *coord, int64_t now_ms)
{
  for (int i = 0; i < COORD_DRAIN_BATCH; i++) {
    zmq_msg_t event;
    zmq_msg_init(&event);
    if (zmq_msg_recv(&event, coord->monitor, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&event);
      return;
    }
    int more = zmq_msg_more(&event);
    if (zmq_msg_size(&event) >= 6) {
      uint16_t id;
      uint32_t value;
      memcpy(&id, zmq_msg_data(&event), sizeof id);
      memcpy(&value, (char *)zmq_msg_data(&event) + 2, sizeof value);
      if (id == ZMQ_EVENT_DISCONNECTED)
        coord_member_disconnected(coord, (int)value, now_ms);
    }
    zmq_msg_close(&event);
    if (more)
      s_drain_extra_parts(coord->monitor);
  }
}

static void s_run_batch(herd_coord_t *coord, s_frame_t *batch)
{
  int n = 0;
  while (n < COORD_DRAIN_BATCH && s_receive_one(coord, &batch[n]))
    n++;
  coord_detect_note_drained(&coord->detect, n < COORD_DRAIN_BATCH);
  pthread_mutex_lock(&coord->lock);
  int64_t now_ms = herd_mono_ms();
  coord_curve_service(coord);
  s_drain_monitor(coord, now_ms);
  for (int i = 0; i < n; i++)
    s_handle_one(coord, &batch[i]);
  coord->current_fd = -1;
  coord_members_tick(coord, now_ms);
  coord_kv_service(coord, now_ms);
  pthread_mutex_unlock(&coord->lock);
}

static void *s_thread_main(void *arg)
{
  herd_coord_t *coord = arg;
  s_frame_t *batch = calloc(COORD_DRAIN_BATCH, sizeof *batch);
  if (!batch) {
    HERD_LOG(HERD_LOG_ERROR, COORD_LOG, "no memory for the receive batch");
    return NULL;
  }
  while (!atomic_load(&coord->stop)) {
    /* The ZAP socket (CURVE only) wakes the loop too: a handshake waits
     * for its answer. */
    zmq_pollitem_t items[3] = {{coord->router, 0, ZMQ_POLLIN, 0},
                               {coord->monitor, 0, ZMQ_POLLIN, 0},
                               {coord->zap, 0, ZMQ_POLLIN, 0}};
    int ready = zmq_poll(items, coord->zap ? 3 : 2, coord->poll_timeout_ms);
    if (ready < 0 && errno == ETERM)
      break;
    s_run_batch(coord, batch);
  }
  free(batch);
  return NULL;
}

/* ---- construction ---------------------------------------------------------
 */

static herd_result_t s_check_config(const herd_coord_config_t *config)
{
  if (!config || config->version != HERD_COORD_CONFIG_VERSION)
    return herd_error_set(HERD_EINVAL, "coordinator config missing or of "
                                       "another version");
  if (!config->token || !config->token[0])
    return herd_error_set(HERD_EINVAL, "coordinator needs a job token");
  if (config->min_workers < 1 || config->heartbeat_interval_ms < 0 ||
      config->heartbeat_misses < 0 || config->join_timeout_ms < 0 ||
      config->port < 0 || config->port > 65535 ||
      config->max_workers > 1000000 || config->min_workers > 1000000)
    return herd_error_set(HERD_EINVAL, "coordinator config out of range");
  return HERD_OK;
}

/* Zero means "default"; -1 means "off" (stored as 0 or -1 below). */
static void s_fill_elastic_defaults(herd_coord_config_t *c)
{
  if (c->last_call_ms == 0)
    c->last_call_ms = 500;
  if (c->disconnect_is_failure == 0)
    c->disconnect_is_failure = 1;
  if (c->watchdog_multiple == 0)
    c->watchdog_multiple = 10;
  if (c->watchdog_min_ms <= 0)
    c->watchdog_min_ms = 4000;
  if (c->host_cooldown_failures == 0)
    c->host_cooldown_failures = 3;
  if (c->host_cooldown_ms <= 0)
    c->host_cooldown_ms = 10000;
  if (c->rejoin_window_ms <= 0)
    c->rejoin_window_ms = 2000;
}

/* Copies the config, filling defaults; strings are owned by coord. */
static herd_result_t s_copy_config(herd_coord_t *coord,
                                   const herd_coord_config_t *config)
{
  herd_coord_config_t *c = &coord->config;
  *c = *config;
  coord->bind_host =
      strdup(config->bind_host ? config->bind_host : "127.0.0.1");
  coord->token = strdup(config->token);
  coord->job_id = strdup(config->job_id ? config->job_id : "herd");
  if (!coord->bind_host || !coord->token || !coord->job_id)
    return HERD_ENOMEM;
  c->bind_host = coord->bind_host;
  c->token = coord->token;
  c->job_id = coord->job_id;
  c->run_dir = NULL; /* kept by coord->events */
  if (c->max_workers < c->min_workers)
    c->max_workers = c->min_workers;
  if (c->heartbeat_interval_ms == 0)
    c->heartbeat_interval_ms = 100;
  if (c->heartbeat_misses == 0)
    c->heartbeat_misses = 20;
  if (c->max_message_bytes == 0)
    c->max_message_bytes = 69632;
  s_fill_elastic_defaults(c);
  coord->limits.job_id = coord->job_id;
  coord->limits.token = coord->token;
  coord->limits.max_message_bytes = c->max_message_bytes;
  int poll_ms = c->heartbeat_interval_ms / 4;
  coord->poll_timeout_ms = poll_ms < 5 ? 5 : poll_ms > 50 ? 50 : poll_ms;
  return HERD_OK;
}

static int s_wildcard(const char *host)
{
  return !strcmp(host, "0.0.0.0") || !strcmp(host, "::") ||
         !strcmp(host, "*") || !strcmp(host, "[::]");
}

/* The endpoint workers dial: the bound port on the advertised address, so
 * `herd coord --bind 0.0.0.0` never hands out 0.0.0.0. */
static herd_result_t s_advertise(herd_coord_t *coord)
{
  char host[HERD_NET_HOST_MAX];
  int port = 0;
  HERD_CHECK(herd_net_split_endpoint(coord->endpoint, host, sizeof host,
                                     &port));
  const char *advertise = coord->config.advertise_host;
  coord->config.advertise_host = NULL; /* the caller's string: only now */
  if (advertise && advertise[0])
    snprintf(host, sizeof host, "%s", advertise);
  else if (s_wildcard(coord->bind_host))
    herd_net_any_addr(host, sizeof host);
  else
    return HERD_OK;
  herd_net_format_endpoint(host, port, coord->endpoint, sizeof coord->endpoint);
  return HERD_OK;
}

static herd_result_t s_bind(herd_coord_t *coord)
{
  int one = 1, zero = 0;
  int64_t hard_max = (int64_t)coord->config.max_message_bytes * 4;
  if (hard_max < COORD_HARD_MAX_BYTES)
    hard_max = COORD_HARD_MAX_BYTES;
  coord->zmq_ctx = zmq_ctx_new();
  if (!coord->zmq_ctx)
    return herd_error_set(HERD_ESYS, "zmq_ctx_new: %s", zmq_strerror(errno));
  coord->router = zmq_socket(coord->zmq_ctx, ZMQ_ROUTER);
  if (!coord->router)
    return herd_error_set(HERD_ESYS, "zmq_socket: %s", zmq_strerror(errno));
  /* MANDATORY: a send to a vanished worker fails instead of vanishing;
   * HANDOVER: a worker reconnecting with its id takes its slot back. */
  zmq_setsockopt(coord->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
  zmq_setsockopt(coord->router, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
  zmq_setsockopt(coord->router, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(coord->router, ZMQ_MAXMSGSIZE, &hard_max, sizeof hard_max);
  /* Thousands of workers connect at once when a job starts; the default
   * backlog of 100 would drop SYNs and stall them for a 1 s retransmit. */
  int backlog = 4096;
  zmq_setsockopt(coord->router, ZMQ_BACKLOG, &backlog, sizeof backlog);
  HERD_CHECK(coord_curve_setup(coord)); /* before the bind */
  char address[300];
  if (coord->config.port)
    snprintf(address, sizeof address, "tcp://%s:%d", coord->bind_host,
             coord->config.port);
  else
    snprintf(address, sizeof address, "tcp://%s:*", coord->bind_host);
  snprintf(coord->monitor_endpoint, sizeof coord->monitor_endpoint,
           "inproc://herd-coord-monitor-%p", (void *)coord);
  coord->monitor = zmq_socket(coord->zmq_ctx, ZMQ_PAIR);
  if (!coord->monitor ||
      zmq_socket_monitor(coord->router, coord->monitor_endpoint,
                         ZMQ_EVENT_DISCONNECTED) != 0 ||
      zmq_connect(coord->monitor, coord->monitor_endpoint) != 0)
    return herd_error_set(HERD_ESYS, "router monitor: %s",
                          zmq_strerror(errno));
  zmq_setsockopt(coord->monitor, ZMQ_LINGER, &zero, sizeof zero);
  if (zmq_bind(coord->router, address) != 0)
    return herd_error_set(HERD_EIO, "cannot bind %s: %s", address,
                          zmq_strerror(errno));
  size_t len = sizeof coord->endpoint;
  if (zmq_getsockopt(coord->router, ZMQ_LAST_ENDPOINT, coord->endpoint, &len) !=
      0)
    return herd_error_set(HERD_ESYS, "cannot read bound endpoint");
  return s_advertise(coord);
}

/* The monitoring counters and the run id (after coord_events_open, whose
 * reset would drop the events hook). */
static herd_result_t s_monitoring_init(herd_coord_t *coord,
                                       const herd_coord_config_t *config)
{
  const char *run_id = config->run_id;
  if (!run_id && config->run_dir) {
    size_t len = strlen(config->run_dir);
    while (len > 1 && config->run_dir[len - 1] == '/')
      len--;
    const char *base = config->run_dir + len;
    while (base > config->run_dir && base[-1] != '/')
      base--;
    coord->run_id = strndup(base, (size_t)(config->run_dir + len - base));
  } else {
    coord->run_id = strdup(run_id ? run_id : coord->job_id);
  }
  if (!coord->run_id)
    return HERD_ENOMEM;
  return coord_metrics_init(coord);
}

/* The HTTP server and the push thread, once the coordinator runs. */
static herd_result_t s_monitoring_start(herd_coord_t *coord,
                                        const herd_coord_config_t *config)
{
  if (config->http_address && config->http_address[0])
    HERD_CHECK(coord_http_start(coord, config->http_address, &coord->http));
  return coord_push_start(coord, &coord->push);
}

/* The coordinator's state without files, sockets or thread: what
 * herd_coord_new and the fuzz target's coord_new_detached share. On
 * failure *coord_out holds what was built, for herd_coord_destroy. */
static herd_result_t s_new_state(const herd_coord_config_t *config,
                                 herd_coord_t **coord_out)
{
  HERD_CHECK(s_check_config(config));
  herd_coord_t *coord = calloc(1, sizeof *coord);
  if (!coord)
    return HERD_ENOMEM;
  *coord_out = coord;
  pthread_mutex_init(&coord->lock, NULL);
  HERD_CHECK(s_copy_config(coord, config));
  HERD_CHECK(coord_members_init(coord));
  HERD_CHECK(coord_detect_init(&coord->detect, coord->members.capacity));
  HERD_CHECK(coord_kv_init(&coord->kv));
  coord->progress.test_accuracy = -1;
  coord->progress.mfu = -1;
  coord->started_ms = herd_mono_ms();
  coord->gen.forming_since_ms = coord->started_ms;
  coord->current_fd = -1;
  coord->current_user = "";
  return HERD_OK;
}

/* The run's settings as the coordinator holds them, for the report. */
static void s_log_start(herd_coord_t *coord)
{
  const herd_coord_config_t *c = &coord->config;
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  coord_events_write(
      &coord->events, "coordinator_started",
      json_pack("{s:s, s:o, s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:b, s:o}",
                "version", HERD_VERSION, "job_id",
                coord_json_string(coord->job_id), "host",
                coord_json_string(host), "min_workers", c->min_workers,
                "max_workers", c->max_workers, "heartbeat_interval_ms",
                c->heartbeat_interval_ms, "heartbeat_misses",
                c->heartbeat_misses, "join_timeout_ms", c->join_timeout_ms,
                "host_cooldown_failures", c->host_cooldown_failures,
                "continue_run", c->continue_run != 0, "curve",
                coord->public_key[0] != '\0', "endpoint",
                coord_json_string(coord->endpoint)));
}

herd_result_t herd_coord_new(const herd_coord_config_t *config,
                             herd_coord_t **coord_out)
{
  herd_result_t rc = HERD_OK;
  herd_coord_t *coord = NULL;
  if (!coord_out)
    return HERD_EINVAL;
  *coord_out = NULL;
  HERD_TRY(s_new_state(config, &coord));
  HERD_TRY(coord_events_open(&coord->events, config->run_dir));
  if (config->continue_run) {
    coord_events_recover(&coord->events, &coord->gen.file_generation,
                         &coord->progress.step);
    coord->progress.step_logged = coord->progress.step;
  }
  HERD_TRY(s_monitoring_init(coord, config));
  HERD_TRY(s_bind(coord));
  s_log_start(coord); /* before the thread: nothing else writes yet */
  if (pthread_create(&coord->thread, NULL, s_thread_main, coord) != 0) {
    rc = herd_error_set(HERD_ESYS, "cannot start the coordinator thread");
    goto out;
  }
  coord->thread_started = 1;
  HERD_TRY(s_monitoring_start(coord, config));
  HERD_LOG(HERD_LOG_INFO, COORD_LOG, "listening on %s", coord->endpoint);
  *coord_out = coord;
  coord = NULL;
out:
  herd_coord_destroy(&coord);
  return rc;
}

/* Everything herd_coord_new builds except sockets and thread: for the fuzz
 * target, which calls coord_handle_frame and the tick directly (sends go to
 * a NULL socket and fail harmlessly). */
herd_result_t coord_new_detached(const herd_coord_config_t *config,
                                 herd_coord_t **coord_out)
{
  herd_result_t rc = HERD_OK;
  herd_coord_t *coord = NULL;
  *coord_out = NULL;
  HERD_TRY(s_new_state(config, &coord));
  HERD_TRY(s_monitoring_init(coord, config));
  *coord_out = coord;
  coord = NULL;
out:
  herd_coord_destroy(&coord);
  return rc;
}

void herd_coord_destroy(herd_coord_t **coord_p)
{
  if (!coord_p || !*coord_p)
    return;
  herd_coord_t *coord = *coord_p;
  *coord_p = NULL;
  /* Monitoring first: its threads read coordinator state. */
  coord_http_stop(&coord->http);
  coord_push_stop(&coord->push);
  if (coord->thread_started) {
    atomic_store(&coord->stop, 1);
    pthread_join(coord->thread, NULL);
  }
  if (coord->router) {
    zmq_socket_monitor(coord->router, NULL, 0);
    zmq_close(coord->router);
  }
  if (coord->monitor)
    zmq_close(coord->monitor);
  coord_curve_close(coord);
  if (coord->zmq_ctx)
    zmq_ctx_term(coord->zmq_ctx);
  coord_events_close(&coord->events);
  pthread_mutex_destroy(&coord->lock);
  coord_members_free(coord);
  coord_detect_free(&coord->detect);
  coord_kv_free(&coord->kv);
  coord_metrics_free(coord);
  free(coord->run_id);
  free(coord->bind_host);
  free(coord->token);
  free(coord->job_id);
  free(coord);
}

/* ---- public API -----------------------------------------------------------
 */

const char *herd_coord_endpoint(const herd_coord_t *coord)
{
  return coord ? coord->endpoint : "";
}

const char *herd_coord_http_url(const herd_coord_t *coord)
{
  return coord ? coord_http_url(coord->http) : NULL;
}

herd_result_t herd_coord_stats(herd_coord_t *coord, herd_coord_stats_t *out)
{
  if (!coord || !out)
    return HERD_EINVAL;
  pthread_mutex_lock(&coord->lock);
  coord_stats_take(coord, out);
  pthread_mutex_unlock(&coord->lock);
  return HERD_OK;
}

void coord_stats_take(const herd_coord_t *coord, herd_coord_stats_t *out)
{
  const coord_progress_t *p = &coord->progress;
  *out = (herd_coord_stats_t){
      .generation = coord->gen.number,
      .world_size = coord->gen.world_size,
      .members = coord->members.used,
      .step = p->step,
      .epoch = p->epoch,
      .loss = p->loss,
      .samples_per_second = p->samples_per_second,
      .failures = coord->members.failures,
      .done = p->done,
      .failed = coord->gen.failed,
      .test_accuracy = p->test_accuracy,
      .malformed_messages = coord->malformed_messages,
      .waiting = coord->members.waiting,
      .adopted_generation = coord->gen.adopted_generation,
      .kv_keys = (int64_t)coord->kv.count,
      .watchdog_evictions = coord->detect.watchdog_evictions,
      .session_refusals = coord->members.session_refusals,
      .model_flops_per_second = p->model_flops_per_second,
      .peak_flops_per_second = p->peak_flops_per_second,
      .mfu = p->mfu,
      .mfu_mean = p->mfu_n ? p->mfu_sum / (double)p->mfu_n : -1,
  };
  snprintf(out->failure, sizeof out->failure, "%s", coord->gen.failure);
}

/* Matches pid on this host only: pids on other hosts may collide. */
static coord_member_t *s_local_member(herd_coord_t *coord, int pid)
{
  char host[COORD_HOST_MAX] = "";
  gethostname(host, sizeof host - 1);
  return coord_member_by_pid(coord, pid, host);
}

herd_result_t herd_coord_note_exit(herd_coord_t *coord, int pid, int status)
{
  if (!coord)
    return HERD_EINVAL;
  pthread_mutex_lock(&coord->lock);
  coord_member_t *member = s_local_member(coord, pid);
  if (member && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    /* Exited cleanly without a Leave: finished, gone all the same. */
    coord_member_leave(coord, member);
  } else if (member) {
    char reason[96];
    if (WIFSIGNALED(status))
      snprintf(reason, sizeof reason, "process killed by signal %d",
               WTERMSIG(status));
    else
      snprintf(reason, sizeof reason, "process exited with status %d",
               WIFEXITED(status) ? WEXITSTATUS(status) : status);
    coord_member_fail(coord, member, "child_exit", reason);
  }
  pthread_mutex_unlock(&coord->lock);
  return HERD_OK;
}

herd_result_t herd_coord_set_workers(herd_coord_t *coord, int min_workers,
                                    int max_workers)
{
  if (!coord || min_workers < 1 || max_workers < min_workers ||
      max_workers > 1000000)
    return herd_error_set(HERD_EINVAL, "workers: need 1 <= min <= max");
  pthread_mutex_lock(&coord->lock);
  coord->config.min_workers = min_workers;
  coord->config.max_workers = max_workers;
  pthread_mutex_unlock(&coord->lock);
  return HERD_OK;
}

herd_result_t herd_coord_add_event(herd_coord_t *coord, const char *event,
                                   const char *fields_json)
{
  json_t *fields = NULL;
  if (!coord || !event || !event[0])
    return HERD_EINVAL;
  if (fields_json) {
    json_error_t error;
    fields = json_loads(fields_json, 0, &error);
    if (!json_is_object(fields)) {
      const char *why = fields ? "not an object" : error.text;
      herd_result_t rc = herd_error_set(
          HERD_EINVAL, "event fields are not a JSON object: %s", why);
      json_decref(fields);
      return rc;
    }
  }
  pthread_mutex_lock(&coord->lock);
  coord_events_write(&coord->events, event, fields);
  pthread_mutex_unlock(&coord->lock);
  return HERD_OK;
}

herd_result_t herd_coord_finish(herd_coord_t *coord, int job_ok,
                                const char *reason)
{
  if (!coord)
    return HERD_EINVAL;
  pthread_mutex_lock(&coord->lock);
  coord_job_apply(coord, COORD_JOB_EV_FINISH);
  coord_events_write(
      &coord->events, "done",
      json_pack("{s:b, s:o}", "ok", job_ok, "reason",
                reason ? coord_json_string(reason) : json_null()));
  herd_result_t rc = coord_events_write_summary(coord, job_ok, reason);
  pthread_mutex_unlock(&coord->lock);
  return rc;
}
