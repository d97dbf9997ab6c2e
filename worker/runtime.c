/* The worker runtime's public API (herd/worker.h): join, roster, reports,
 * leave.
 *
 * Join starts the link thread (runtime_link.c) first and then waits for its
 * first roster, because a worker may wait a long time for the rest of the
 * job to join and must keep heartbeating meanwhile, or the coordinator would
 * declare it dead before the job even formed.
 *
 * Reports are packed here, on the caller's thread, and queued on an inproc
 * PAIR with ZMQ_DONTWAIT: the training step never waits for the network.
 * While the coordinator is unreachable the link thread stops draining that
 * queue, so it is the (bounded) buffer; a full queue drops and counts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "herd/settings.h"
#include "herd/clock.h"
#include "herd/herd.h"
#include "runtime_internal.h"

#define WORKER_QUEUE_HWM 10000
#define WORKER_LEAVE_FLUSH_MS 1000
#define WORKER_LINGER_MS 500

/* ---- configuration --------------------------------------------------------
 */

static herd_result_t s_copy_config(herd_worker_t *worker,
                                   const herd_worker_config_t *config)
{
  const char *endpoint =
      config->coord_endpoint ? config->coord_endpoint
                             : herd_setting_string(HERD_S_COORD);
  char token[HERD_TOKEN_MAX];
  HERD_CHECK(herd_setting_token(config->token, NULL, token, sizeof token));
  const char *job_id =
      config->job_id ? config->job_id : herd_setting_string(HERD_S_JOB_ID);
  if (!endpoint || !endpoint[0])
    return herd_error_set(HERD_EINVAL, "no coordinator address: set "
                                       "HERD_COORD (tcp://host:port)");
  if (!token[0])
    return herd_error_set(HERD_EINVAL, "no job token: set HERD_TOKEN_FILE "
                                       "(a file holding it) or HERD_TOKEN");
  worker->endpoint = strdup(endpoint);
  worker->token = strdup(token);
  worker->job_id = strdup(job_id && job_id[0] ? job_id : "herd");
  if (!worker->endpoint || !worker->token || !worker->job_id)
    return HERD_ENOMEM;
  if (config->version >= 2 && config->iface && config->iface[0] &&
      !(worker->iface = strdup(config->iface)))
    return HERD_ENOMEM;
  const char *key = config->version >= 3 && config->coord_public_key
                        ? config->coord_public_key
                        : herd_setting_string(HERD_S_COORD_KEY);
  if (key && strlen(key) >= sizeof worker->coord_key)
    return herd_error_set(HERD_EINVAL, "HERD_COORD_KEY: not a CURVE public "
                          "key (40 characters of Z85)");
  snprintf(worker->coord_key, sizeof worker->coord_key, "%s", key ? key : "");
  worker->launcher_rank = config->launcher_rank;
  worker->launcher_world_size = config->launcher_world_size;
  worker->heartbeat_from_config = config->heartbeat_interval_ms > 0;
  worker->heartbeat_interval_ms = config->heartbeat_interval_ms > 0
                                      ? config->heartbeat_interval_ms
                                      : WORKER_DEFAULT_HEARTBEAT_MS;
  worker->join_timeout_ms = config->join_timeout_ms > 0
                                ? config->join_timeout_ms
                                : WORKER_DEFAULT_JOIN_TIMEOUT_MS;
  return HERD_OK;
}

/* host:pid:random, unique even when pids repeat across hosts or restarts. */
static void s_make_identity(herd_worker_t *worker)
{
  unsigned random_bits = 0;
  if (getrandom(&random_bits, sizeof random_bits, GRND_NONBLOCK) !=
      (ssize_t)sizeof random_bits) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    random_bits = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 16);
  }
  if (gethostname(worker->host, sizeof worker->host - 1) != 0)
    snprintf(worker->host, sizeof worker->host, "unknown");
  worker->pid = (int)getpid();
  snprintf(worker->routing_id, sizeof worker->routing_id, "%s:%d:%08x",
           worker->host, worker->pid, random_bits);
}

/* ---- sockets ----------------------------------------------------------------
 */

/* The link thread learns of (re)connections from the DEALER's monitor; it
 * must be listening before the DEALER connects or the first event is lost.
 * ZMTP heartbeats notice a coordinator host that vanished without closing
 * the connection. */
static herd_result_t s_open_monitor(herd_worker_t *worker)
{
  char endpoint[300];
  int zero = 0, ivl = 1000, timeout = 3000;
  snprintf(endpoint, sizeof endpoint, "inproc://herd-link-monitor-%p",
           (void *)worker);
  zmq_setsockopt(worker->monitor, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(worker->dealer, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
  zmq_setsockopt(worker->dealer, ZMQ_HEARTBEAT_TIMEOUT, &timeout,
                 sizeof timeout);
  if (zmq_socket_monitor(worker->dealer, endpoint,
                         ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
      zmq_connect(worker->monitor, endpoint) != 0)
    return herd_error_set(HERD_ESYS, "link monitor: %s", zmq_strerror(errno));
  return HERD_OK;
}

/* A bounded inproc PAIR from the caller's thread (in) to the link thread
 * (out); nothing lingers at close. */
static herd_result_t s_open_queue(void *in, void *out, const char *name,
                                  const herd_worker_t *worker)
{
  int hwm = WORKER_QUEUE_HWM, zero = 0;
  char inproc[300];
  zmq_setsockopt(in, ZMQ_SNDHWM, &hwm, sizeof hwm);
  zmq_setsockopt(out, ZMQ_RCVHWM, &hwm, sizeof hwm);
  zmq_setsockopt(in, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(out, ZMQ_LINGER, &zero, sizeof zero);
  snprintf(inproc, sizeof inproc, "inproc://herd-%s-%p", name,
           (const void *)worker);
  if (zmq_bind(out, inproc) != 0 || zmq_connect(in, inproc) != 0)
    return herd_error_set(HERD_ESYS, "inproc queue: %s", zmq_strerror(errno));
  return HERD_OK;
}

static herd_result_t s_open_sockets(herd_worker_t *worker)
{
  int linger = WORKER_LINGER_MS;
  /* A connect attempt into a cut link would otherwise wait out the
   * kernel's SYN retries (1, 3, 7 s ...): give up after 500 ms and retry,
   * so the worker is back within ~1.5 s of the link returning. */
  int reconnect_ms = 100, reconnect_max_ms = 1000, connect_timeout_ms = 500;
  worker->zmq_ctx = zmq_ctx_new();
  if (!worker->zmq_ctx)
    return herd_error_set(HERD_ESYS, "zmq_ctx_new: %s", zmq_strerror(errno));
  worker->dealer = zmq_socket(worker->zmq_ctx, ZMQ_DEALER);
  worker->queue_in = zmq_socket(worker->zmq_ctx, ZMQ_PAIR);
  worker->queue_out = zmq_socket(worker->zmq_ctx, ZMQ_PAIR);
  worker->steps_in = zmq_socket(worker->zmq_ctx, ZMQ_PAIR);
  worker->steps_out = zmq_socket(worker->zmq_ctx, ZMQ_PAIR);
  worker->monitor = zmq_socket(worker->zmq_ctx, ZMQ_PAIR);
  if (!worker->dealer || !worker->queue_in || !worker->queue_out ||
      !worker->steps_in || !worker->steps_out || !worker->monitor)
    return herd_error_set(HERD_ESYS, "zmq_socket: %s", zmq_strerror(errno));
  HERD_CHECK(s_open_monitor(worker));
  zmq_setsockopt(worker->dealer, ZMQ_ROUTING_ID, worker->routing_id,
                 strlen(worker->routing_id));
  zmq_setsockopt(worker->dealer, ZMQ_LINGER, &linger, sizeof linger);
  zmq_setsockopt(worker->dealer, ZMQ_RECONNECT_IVL, &reconnect_ms,
                 sizeof reconnect_ms);
  zmq_setsockopt(worker->dealer, ZMQ_RECONNECT_IVL_MAX, &reconnect_max_ms,
                 sizeof reconnect_max_ms);
  zmq_setsockopt(worker->dealer, ZMQ_CONNECT_TIMEOUT, &connect_timeout_ms,
                 sizeof connect_timeout_ms);
  /* After a reconnect the replayed step reports and the buffered queue go
   * out at once: the DEALER must hold them all (the default 1000 would drop
   * the newest, and with them steps from events.jsonl). */
  int dealer_hwm = WORKER_QUEUE_HWM + WORKER_REPLAY_STEPS + 64;
  zmq_setsockopt(worker->dealer, ZMQ_SNDHWM, &dealer_hwm, sizeof dealer_hwm);
  HERD_CHECK(s_open_queue(worker->queue_in, worker->queue_out, "reports",
                          worker));
  HERD_CHECK(s_open_queue(worker->steps_in, worker->steps_out, "steps",
                          worker));
  /* CURVE: encrypted, and this worker's session is its key (the socket
   * keeps it for every reconnect). */
  if (worker->coord_key[0])
    HERD_CHECK(herd_wire_curve_client(worker->dealer, worker->coord_key));
  if (zmq_connect(worker->dealer, worker->endpoint) != 0)
    return herd_error_set(HERD_EINVAL, "cannot connect to '%s': %s",
                          worker->endpoint, zmq_strerror(errno));
  return HERD_OK;
}

static void s_destroy(herd_worker_t *worker)
{
  if (!worker)
    return;
  worker_replay_free(worker);
  if (worker->dealer) {
    zmq_socket_monitor(worker->dealer, NULL, 0);
    zmq_close(worker->dealer);
  }
  if (worker->monitor)
    zmq_close(worker->monitor);
  if (worker->queue_in)
    zmq_close(worker->queue_in);
  if (worker->queue_out)
    zmq_close(worker->queue_out);
  if (worker->steps_in)
    zmq_close(worker->steps_in);
  if (worker->steps_out)
    zmq_close(worker->steps_out);
  if (worker->zmq_ctx)
    zmq_ctx_term(worker->zmq_ctx); /* waits up to the DEALER's linger */
  pthread_cond_destroy(&worker->changed);
  pthread_mutex_destroy(&worker->lock);
  pthread_mutex_destroy(&worker->queue_lock);
  free(worker->endpoint);
  free(worker->token);
  free(worker->job_id);
  free(worker->iface);
  free(worker);
}

static void s_stop_thread(herd_worker_t *worker)
{
  if (!worker->thread_started)
    return;
  atomic_store(&worker->stop, 1);
  pthread_join(worker->thread, NULL);
  worker->thread_started = 0;
}

/* ---- join -------------------------------------------------------------------
 */

static herd_worker_t *s_alloc(void)
{
  herd_worker_t *worker = calloc(1, sizeof *worker);
  if (!worker)
    return NULL;
  worker_trainer_seen(worker);
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&worker->changed, &attr);
  pthread_condattr_destroy(&attr);
  pthread_mutex_init(&worker->lock, NULL);
  pthread_mutex_init(&worker->queue_lock, NULL);
  atomic_store(&worker->last_step, -1);
  return worker;
}

/* With worker->lock held: waits until a roster newer than `after` or a
 * refusal arrives, or the deadline passes (HERD_ETIMEDOUT). */
static herd_result_t s_wait_newer_locked(herd_worker_t *worker, int64_t after,
                                         const struct timespec *deadline)
{
  while (!(worker->have_roster && worker->roster.generation > after) &&
         !worker->refused)
    if (pthread_cond_timedwait(&worker->changed, &worker->lock, deadline) ==
        ETIMEDOUT)
      return HERD_ETIMEDOUT;
  return HERD_OK;
}

/* Waits for the first roster or a refusal, at most join_timeout_ms. */
static herd_result_t s_wait_roster(herd_worker_t *worker)
{
  herd_result_t rc = HERD_OK;
  struct timespec deadline = herd_deadline_in(CLOCK_MONOTONIC, worker->join_timeout_ms);
  pthread_mutex_lock(&worker->lock);
  rc = s_wait_newer_locked(worker, INT64_MIN, &deadline);
  if (worker->refused)
    rc = herd_error_set(HERD_EAUTH, "coordinator refused the join: %s",
                        worker->refused_reason);
  else if (worker->have_roster)
    rc = HERD_OK;
  else
    rc = herd_error_set(HERD_ETIMEDOUT,
                        "no roster from coordinator %s "
                        "within %g s (is it running, did the other "
                        "workers join, and %s?)",
                        worker->endpoint, worker->join_timeout_ms / 1000.0,
                        worker->coord_key[0]
                            ? "is HERD_COORD_KEY the key it printed"
                            : "if it runs CURVE (it does when it listens "
                              "beyond loopback), is HERD_COORD_KEY set");
  pthread_mutex_unlock(&worker->lock);
  return rc;
}

/* Once joined the coordinator's name resolves (it may not have before, in
 * a Kubernetes pod that starts before the Service's DNS record). */
static herd_result_t s_find_advertise_addr(herd_worker_t *worker)
{
  herd_result_t rc = herd_net_advertise_addr(
      worker->iface, worker->endpoint, worker->advertise_addr,
      sizeof worker->advertise_addr);
  if (rc != HERD_OK)
    return herd_error_set(rc, "address to advertise to peers (%s): %s",
                          worker->iface ? "HERD_IFACE" : "route to the "
                                                         "coordinator",
                          herd_error_detail());
  if (herd_net_iface_of(worker->advertise_addr, worker->advertise_iface,
                        sizeof worker->advertise_iface) != HERD_OK)
    worker->advertise_iface[0] = '\0';
  HERD_LOG(HERD_LOG_INFO, WORKER_LOG, "advertising %s (interface %s) to peers",
           worker->advertise_addr,
           worker->advertise_iface[0] ? worker->advertise_iface : "?");
  return HERD_OK;
}

const char *herd_worker_advertise_addr(const herd_worker_t *worker)
{
  return worker && worker->advertise_addr[0] ? worker->advertise_addr
                                              : "127.0.0.1";
}

const char *herd_worker_advertise_iface(const herd_worker_t *worker)
{
  return worker ? worker->advertise_iface : "";
}

herd_result_t herd_worker_join(const herd_worker_config_t *config,
                               herd_worker_t **worker_out)
{
  herd_result_t rc = HERD_OK;
  herd_worker_t *worker = NULL;
  if (!config || !worker_out || config->version < 1 ||
      config->version > HERD_WORKER_CONFIG_VERSION)
    return herd_error_set(HERD_EINVAL, "worker config missing or of "
                                       "another version");
  *worker_out = NULL;
  worker = s_alloc();
  if (!worker)
    return HERD_ENOMEM;
  HERD_TRY(s_copy_config(worker, config));
  s_make_identity(worker);
  HERD_TRY(s_open_sockets(worker));
  HERD_LOG(HERD_LOG_INFO, WORKER_LOG, "joining %s as %s%s", worker->endpoint,
           worker->routing_id,
           worker->coord_key[0] ? " (CURVE)" : " (plain text)");
  if (pthread_create(&worker->thread, NULL, worker_link_main, worker) != 0) {
    rc = herd_error_set(HERD_ESYS, "cannot start the worker link thread");
    goto out;
  }
  worker->thread_started = 1;
  HERD_TRY(s_wait_roster(worker));
  HERD_TRY(s_find_advertise_addr(worker));
  *worker_out = worker;
  worker = NULL;
out:
  if (worker) {
    s_stop_thread(worker);
    s_destroy(worker);
  }
  return rc;
}

#define WORKER_TRAINER_QUIET_MS 1000

void worker_trainer_seen(herd_worker_t *worker)
{
  atomic_store(&worker->trainer_seen_ms, (long long)herd_mono_ms());
}

int worker_trainer_alive(herd_worker_t *worker, int64_t now_ms)
{
  /* Blocked in a collective counts: waiting on peers is not being hung in
   * its own computation, and the roster hook will abort that wait. */
  return atomic_load(&worker->awaiting_roster) || herd_comm_waiting_ms() > 0 ||
         now_ms - atomic_load(&worker->trainer_seen_ms) < WORKER_TRAINER_QUIET_MS;
}

int herd_worker_job_done(herd_worker_t *worker)
{
  if (!worker)
    return 0;
  pthread_mutex_lock(&worker->lock);
  int done = worker->job_done;
  pthread_mutex_unlock(&worker->lock);
  return done;
}

herd_result_t herd_worker_roster(herd_worker_t *worker, herd_roster_t *out)
{
  if (!worker || !out)
    return HERD_EINVAL;
  worker_trainer_seen(worker);
  herd_result_t rc = HERD_OK;
  pthread_mutex_lock(&worker->lock);
  *out = worker->roster;
  if (worker->refused)
    rc = herd_error_set(HERD_ESTATE, "no longer a member: %s",
                        worker->refused_reason);
  pthread_mutex_unlock(&worker->lock);
  return rc;
}

herd_result_t herd_worker_wait_roster(herd_worker_t *worker,
                                      int64_t after_generation, int timeout_ms,
                                      herd_roster_t *out)
{
  if (!worker || !out || timeout_ms < 0)
    return HERD_EINVAL;
  struct timespec deadline = herd_deadline_in(CLOCK_MONOTONIC, timeout_ms);
  atomic_store(&worker->awaiting_roster, 1);
  pthread_mutex_lock(&worker->lock);
  herd_result_t rc = s_wait_newer_locked(worker, after_generation, &deadline);
  atomic_store(&worker->awaiting_roster, 0);
  worker_trainer_seen(worker);
  *out = worker->roster;
  if (worker->refused)
    rc = herd_error_set(HERD_ESTATE, "no longer a member: %s",
                        worker->refused_reason);
  else if (rc == HERD_ETIMEDOUT)
    rc = herd_error_set(HERD_ETIMEDOUT, "no generation after %lld within "
                        "%g s (too few workers for --min?)",
                        (long long)after_generation, timeout_ms / 1000.0);
  pthread_mutex_unlock(&worker->lock);
  return rc;
}

void herd_worker_generation_formed(herd_worker_t *worker, int64_t generation)
{
  if (!worker)
    return;
  pthread_mutex_lock(&worker->lock);
  worker->formed_generation = generation;
  pthread_mutex_unlock(&worker->lock);
}

void herd_worker_on_roster(herd_worker_t *worker,
                           herd_worker_roster_hook_t hook, void *arg)
{
  if (!worker)
    return;
  pthread_mutex_lock(&worker->lock);
  worker->roster_hook = hook;
  worker->roster_hook_arg = arg;
  pthread_mutex_unlock(&worker->lock);
}

/* ---- reports ----------------------------------------------------------------
 */

/* Packs env onto one of the link thread's queues; 0 when it is full. */
static int s_queue_on(herd_worker_t *worker, void *queue, Herd__Envelope *env)
{
  zmq_msg_t frame;
  if (herd_wire_pack(env, &frame) != HERD_OK)
    return 0;
  pthread_mutex_lock(&worker->queue_lock);
  int sent = zmq_msg_send(&frame, queue, ZMQ_DONTWAIT) >= 0;
  pthread_mutex_unlock(&worker->queue_lock);
  if (!sent)
    zmq_msg_close(&frame);
  return sent;
}

int worker_queue(herd_worker_t *worker, Herd__Envelope *env)
{
  return s_queue_on(worker, worker->queue_in, env);
}

/* A report on `queue` (queue_in, or steps_in for step reports); a drop is
 * counted, never the caller's failure. */
static void s_queue(herd_worker_t *worker, void *queue, Herd__Envelope *env)
{
  if (s_queue_on(worker, queue, env))
    return;
  long long dropped = atomic_fetch_add(&worker->dropped_reports, 1) + 1;
  /* Log the first and then every 1000th, not every drop. */
  if (dropped % 1000 == 1)
    HERD_LOG(HERD_LOG_WARN, WORKER_LOG, "report queue full: %lld reports dropped",
             dropped);
}

/* About once a second, the rates of this process's TCP links since the
 * last time (named by the peer's address) go with a step report. */
static int s_link_rates(herd_worker_t *worker, herd_net_link_rate_t *rates,
                        int max)
{
  int64_t now_ms = herd_mono_ms();
  if (now_ms - worker->links_at_ms < WORKER_LINKS_EVERY_MS)
    return 0;
  herd_net_link_t now[HERD_NET_LINKS_MAX];
  int n_now = herd_net_links_sample(now, HERD_NET_LINKS_MAX);
  int n = worker->links_at_ms
              ? herd_net_links_rates(worker->links_prev, worker->n_links_prev,
                                     now, n_now, rates, max)
              : 0;
  memcpy(worker->links_prev, now, (size_t)n_now * sizeof *now);
  worker->n_links_prev = n_now;
  worker->links_at_ms = now_ms;
  return n;
}

void herd_worker_report_step(herd_worker_t *worker,
                             const herd_step_report_t *report)
{
  if (!worker || !report)
    return;
  worker_trainer_seen(worker);
  Herd__Envelope env;
  Herd__StepReport r = HERD__STEP_REPORT__INIT;
  worker_envelope_init(worker, &env);
  r.step = report->step;
  r.epoch = report->epoch;
  r.generation = report->generation;
  r.world_size = report->world_size;
  r.loss = report->loss;
  r.samples = report->samples;
  r.samples_per_second = report->samples_per_second;
  r.step_seconds = report->step_seconds;
  r.flops_per_sample = report->flops_per_sample;
  r.host_peak_flops = report->host_peak_flops;
  r.compute_seconds = report->compute_seconds;
  r.comm_seconds = report->comm_seconds;
  r.data_seconds = report->data_seconds;
  r.sample_begin = report->sample_begin;
  r.sample_end = report->sample_end;
  r.total_steps = report->total_steps;
  herd_net_link_rate_t rates[WORKER_LINKS_REPORTED];
  Herd__LinkRate links[WORKER_LINKS_REPORTED];
  Herd__LinkRate *link_ptrs[WORKER_LINKS_REPORTED];
  int n_links = s_link_rates(worker, rates, WORKER_LINKS_REPORTED);
  for (int i = 0; i < n_links; i++) {
    herd__link_rate__init(&links[i]);
    links[i].peer = rates[i].peer;
    links[i].mbps = rates[i].mbps;
    link_ptrs[i] = &links[i];
  }
  r.addr = worker->advertise_addr;
  r.n_links = (size_t)n_links;
  r.links = link_ptrs;
  env.body_case = HERD__ENVELOPE__BODY_STEP_REPORT;
  env.step_report = &r;
  atomic_store(&worker->last_step, report->step);
  s_queue(worker, worker->steps_in, &env);
}

void herd_worker_report_epoch(herd_worker_t *worker, int64_t epoch,
                              double test_accuracy, double test_loss)
{
  if (!worker)
    return;
  Herd__Envelope env;
  Herd__EpochEnd e = HERD__EPOCH_END__INIT;
  worker_envelope_init(worker, &env);
  e.epoch = epoch;
  e.test_accuracy = test_accuracy;
  e.test_loss = test_loss;
  env.body_case = HERD__ENVELOPE__BODY_EPOCH_END;
  env.epoch_end = &e;
  s_queue(worker, worker->queue_in, &env);
}

void herd_worker_report_checkpoint(herd_worker_t *worker, int64_t step,
                                   const char *path)
{
  herd_ckpt_report_t report = {.step = step, .path = path};
  herd_worker_report_checkpoint_stats(worker, &report);
}

void herd_worker_report_checkpoint_stats(herd_worker_t *worker,
                                         const herd_ckpt_report_t *report)
{
  if (!worker || !report || !report->path)
    return;
  Herd__Envelope env;
  Herd__CkptCommitted c = HERD__CKPT_COMMITTED__INIT;
  worker_envelope_init(worker, &env);
  c.step = report->step;
  c.path = (char *)report->path;
  c.duration_seconds = report->duration_seconds;
  c.bytes = report->bytes;
  c.stall_seconds = report->stall_seconds;
  env.body_case = HERD__ENVELOPE__BODY_CKPT_COMMITTED;
  env.ckpt_committed = &c;
  s_queue(worker, worker->queue_in, &env);
}

void herd_worker_report_done(herd_worker_t *worker,
                             const herd_done_report_t *report)
{
  if (!worker || !report)
    return;
  Herd__Envelope env;
  Herd__Done d = HERD__DONE__INIT;
  worker_envelope_init(worker, &env);
  d.final_step = report->final_step;
  d.epochs = report->epochs;
  d.test_accuracy = report->test_accuracy;
  d.samples_per_second = report->samples_per_second;
  d.world_size = report->world_size;
  d.resumed_from_step = report->resumed_from_step;
  d.param_sha256 = (char *)report->param_sha256;
  env.body_case = HERD__ENVELOPE__BODY_DONE;
  env.done = &d;
  s_queue(worker, worker->queue_in, &env);
}

/* ---- leave ------------------------------------------------------------------
 */

void herd_worker_leave(herd_worker_t **worker_p)
{
  if (!worker_p || !*worker_p)
    return;
  herd_worker_t *worker = *worker_p;
  *worker_p = NULL;
  /* The empty marker queues behind every report; the link thread forwards
   * them all, sends Leave and exits. Bounded: if the queue stays full or
   * the thread does not finish in time, stop it anyway. */
  int timeout_ms = WORKER_LEAVE_FLUSH_MS;
  pthread_mutex_lock(&worker->queue_lock);
  zmq_setsockopt(worker->queue_in, ZMQ_SNDTIMEO, &timeout_ms,
                 sizeof timeout_ms);
  if (zmq_send(worker->queue_in, "", 0, 0) < 0)
    atomic_store(&worker->stop, 1);
  pthread_mutex_unlock(&worker->queue_lock);
  struct timespec deadline =
      herd_deadline_in(CLOCK_REALTIME, WORKER_LEAVE_FLUSH_MS + 1000);
  if (worker->thread_started &&
      pthread_timedjoin_np(worker->thread, NULL, &deadline) == 0)
    worker->thread_started = 0;
  s_stop_thread(worker);
  long long dropped = atomic_load(&worker->dropped_reports);
  if (dropped)
    HERD_LOG(HERD_LOG_WARN, WORKER_LOG, "%lld reports were dropped", dropped);
  s_destroy(worker);
}
