/* bench/coord_scale: how the coordinator copes with many workers.
 *
 * One coordinator process (herd_coord_new in a forked child, so its CPU
 * time and VmRSS are its own) and simulated workers: plain DEALER sockets
 * speaking the wire protocol from a few forked processes (2,500 sockets
 * each: a DEALER costs two fds), each joining and then heartbeating at the
 * default interval (100 ms), spread evenly over the interval. For every
 * level it reports
 *   - formation: from the moment all workers send Join to the moment the
 *     last one holds its roster (one generation of all of them);
 *   - the coordinator's CPU use (getrusage of its process, all threads) and
 *     resident memory in steady state;
 *   - handling latency: a probe member sends a request every 5 ms through
 *     the same ROUTER queue the heartbeats use (a KvGet that is answered at
 *     once) and times the round trip, p50/p99;
 *   - heartbeat evictions (must be 0: the coordinator kept up).
 * Usage: coord_scale [--quick] [--curve] [--out FILE]. Full: 1,000 / 4,000
 * / 10,000 workers plus a 4,096 formation run. --curve runs the control
 * plane as herd does beyond loopback (CURVE, a ZAP handler, sessions): its
 * cost is the ratio to a plain run. Every wait is bounded.
 */
#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "herd/herd.h"
#include "herd/coord.h"
#include "herd_wire.h"

/* --curve: the coordinator's keypair (forked children inherit it); "":
 * plain text. */
static char s_curve_public[41], s_curve_secret[41];

static void s_maybe_curve(void *socket)
{
  if (s_curve_public[0] &&
      herd_wire_curve_client(socket, s_curve_public) != HERD_OK) {
    fprintf(stderr, "curve: %s\n", herd_error_detail());
    _exit(2);
  }
}

#define TOKEN "scale-token"
#define JOB "scale"
#define PER_PROCESS 2500
#define MAX_SIMS 16

static int64_t s_now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void s_raise_nofile(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static size_t s_pack(Herd__Envelope *env, uint8_t *buf, size_t cap)
{
  env->version = HERD_PROTOCOL_VERSION;
  env->job_id = JOB;
  size_t n = herd__envelope__get_packed_size(env);
  if (n > cap)
    abort();
  herd__envelope__pack(env, buf);
  return n;
}

static size_t s_pack_join(uint8_t *buf, size_t cap)
{
  Herd__Envelope env = HERD__ENVELOPE__INIT;
  Herd__Join join = HERD__JOIN__INIT;
  join.token = TOKEN, join.pid = (int)getpid(), join.host = "sim";
  join.launcher_rank = -1, join.rank = -1;
  env.body_case = HERD__ENVELOPE__BODY_JOIN, env.join = &join;
  return s_pack(&env, buf, cap);
}

static size_t s_pack_heartbeat(uint8_t *buf, size_t cap)
{
  Herd__Envelope env = HERD__ENVELOPE__INIT;
  Herd__Heartbeat hb = HERD__HEARTBEAT__INIT;
  hb.step = -1;
  env.body_case = HERD__ENVELOPE__BODY_HEARTBEAT, env.heartbeat = &hb;
  return s_pack(&env, buf, cap);
}

static int s_is_roster(const void *data, size_t size)
{
  herd_wire_msg_t msg;
  if (herd_wire_decode(data, size, 1 << 20, &msg) != HERD_OK)
    return 0;
  int yes = msg.env->body_case == HERD__ENVELOPE__BODY_ROSTER;
  herd_wire_msg_clear(&msg);
  return yes;
}

/* Receives everything waiting on `sock`; returns 1 if a roster came. */
static int s_drain(void *sock)
{
  int roster = 0;
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      return roster;
    }
    roster |= s_is_roster(zmq_msg_data(&msg), zmq_msg_size(&msg));
    zmq_msg_close(&msg);
  }
}

/* ---- a simulator process -------------------------------------------------- */

typedef struct {
  void *ctx;
  void **socks;
  char *got;
  int n;
} s_sim_t;

static void s_sim_open(s_sim_t *sim, const char *endpoint, int first, int n)
{
  int zero = 0, hwm = 100000;
  sim->ctx = zmq_ctx_new();
  zmq_ctx_set(sim->ctx, ZMQ_MAX_SOCKETS, n + 64);
  sim->socks = calloc((size_t)n, sizeof *sim->socks);
  sim->got = calloc((size_t)n, 1);
  sim->n = n;
  for (int i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof id, "sim-%d", first + i);
    void *s = zmq_socket(sim->ctx, ZMQ_DEALER);
    if (!s) {
      fprintf(stderr, "sim: zmq_socket %d: %s\n", i, zmq_strerror(errno));
      _exit(2);
    }
    zmq_setsockopt(s, ZMQ_ROUTING_ID, id, strlen(id));
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    s_maybe_curve(s);
    zmq_connect(s, endpoint);
    sim->socks[i] = s;
  }
}

/* Sends Join everywhere, sweeps until every socket holds a roster. */
static int64_t s_sim_join(s_sim_t *sim)
{
  uint8_t join[256];
  size_t join_len = s_pack_join(join, sizeof join);
  for (int i = 0; i < sim->n; i++)
    zmq_send(sim->socks[i], join, join_len, ZMQ_DONTWAIT);
  uint8_t hb[64];
  size_t hb_len = s_pack_heartbeat(hb, sizeof hb);
  int have = 0;
  int64_t deadline = s_now_us() + 60 * 1000000LL;
  int64_t next_hb = s_now_us() + 100000;
  while (have < sim->n && s_now_us() < deadline) {
    int beat = s_now_us() >= next_hb; /* waiting workers heartbeat too */
    if (beat)
      next_hb += 100000;
    for (int i = 0; i < sim->n; i++) {
      if (beat)
        zmq_send(sim->socks[i], hb, hb_len, ZMQ_DONTWAIT);
      if (!sim->got[i] && s_drain(sim->socks[i]))
        sim->got[i] = 1, have++;
    }
    if (have < sim->n)
      usleep(200);
  }
  if (have < sim->n)
    fprintf(stderr, "sim %d..%d: %d of %d sockets got a roster in 60 s\n",
            0, sim->n - 1, have, sim->n);
  return have == sim->n ? s_now_us() : -1;
}

/* Heartbeats in 10 slices per interval until the parent closes `cmd`. */
static void s_sim_heartbeat(s_sim_t *sim, int cmd, int interval_ms)
{
  uint8_t hb[64];
  size_t hb_len = s_pack_heartbeat(hb, sizeof hb);
  const int slices = 10;
  int slice = 0;
  int64_t next = s_now_us(), end = s_now_us() + 300 * 1000000LL;
  while (s_now_us() < end) {
    for (int i = slice; i < sim->n; i += slices) {
      zmq_send(sim->socks[i], hb, hb_len, ZMQ_DONTWAIT);
      s_drain(sim->socks[i]);
    }
    slice = (slice + 1) % slices;
    next += interval_ms * 1000 / slices;
    int64_t wait_us = next - s_now_us();
    struct pollfd pfd = {cmd, POLLIN, 0};
    if (poll(&pfd, 1, wait_us > 0 ? (int)(wait_us / 1000) : 0) == 1)
      return; /* EOF or anything: stop */
  }
}

static void s_sim_main(const char *endpoint, int first, int n, int cmd, int out)
{
  s_sim_t sim;
  s_sim_open(&sim, endpoint, first, n);
  char go;
  if (write(out, "R", 1) != 1 || read(cmd, &go, 1) != 1)
    _exit(3);
  int64_t done_us = s_sim_join(&sim);
  if (getenv("HERD_BENCH_DEBUG"))
    fprintf(stderr, "sim %d: joined, done %lld\n", first, (long long)done_us);
  if (write(out, &done_us, sizeof done_us) != (ssize_t)sizeof done_us)
    _exit(4);
  s_sim_heartbeat(&sim, cmd, 100);
  for (int i = 0; i < n; i++)
    zmq_close(sim.socks[i]);
  zmq_ctx_term(sim.ctx);
  _exit(0);
}

/* ---- the coordinator process ---------------------------------------------- */

typedef struct {
  int64_t cpu_us, rss_kb, failures, members, generation;
} s_usage_t;

static int64_t s_rss_kb(void)
{
  char line[256];
  int64_t kb = -1;
  FILE *file = fopen("/proc/self/status", "r");
  while (file && fgets(line, sizeof line, file))
    if (sscanf(line, "VmRSS: %lld", (long long *)&kb) == 1)
      break;
  if (file)
    fclose(file);
  return kb;
}

static void s_coord_main(int members, int cmd, int out)
{
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.token = TOKEN;
  config.job_id = JOB;
  config.min_workers = members;
  config.max_workers = members;
  config.join_timeout_ms = 120000;
  config.curve_secret_key = s_curve_secret[0] ? s_curve_secret : NULL;
  herd_coord_t *coord = NULL;
  if (herd_coord_new(&config, &coord) != HERD_OK) {
    fprintf(stderr, "coord: %s\n", herd_error_detail());
    _exit(2);
  }
  char endpoint[256];
  snprintf(endpoint, sizeof endpoint, "%s", herd_coord_endpoint(coord));
  if (write(out, endpoint, sizeof endpoint) != (ssize_t)sizeof endpoint)
    _exit(3);
  char c;
  while (read(cmd, &c, 1) == 1) {
    struct rusage ru;
    herd_coord_stats_t stats;
    getrusage(RUSAGE_SELF, &ru);
    herd_coord_stats(coord, &stats);
    s_usage_t u = {(int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec,
                   s_rss_kb(), stats.failures, stats.members, stats.generation};
    if (write(out, &u, sizeof u) != (ssize_t)sizeof u)
      break;
  }
  herd_coord_destroy(&coord);
  _exit(0);
}

/* ---- orchestration --------------------------------------------------------- */

typedef struct {
  pid_t pid;
  int cmd, out; /* we write cmd, read out */
} s_child_t;

static s_child_t s_fork(void (*body)(void *), void *arg)
{
  int cmd[2], out[2];
  if (pipe(cmd) || pipe(out))
    abort();
  s_child_t c = {fork(), cmd[1], out[0]};
  if (c.pid == 0) {
    close(cmd[1]);
    close(out[0]);
    int *fds = arg;
    fds[0] = cmd[0], fds[1] = out[1];
    body(arg);
    _exit(0);
  }
  close(cmd[0]);
  close(out[1]);
  return c;
}

static int s_read_full(int fd, void *buf, size_t size, int timeout_ms)
{
  size_t got = 0;
  while (got < size) {
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) != 1)
      return -1;
    ssize_t n = read(fd, (char *)buf + got, size - got);
    if (n <= 0)
      return -1;
    got += (size_t)n;
  }
  return 0;
}

typedef struct {
  int fds[2];
  int members;
  const char *endpoint;
  int first, n;
} s_body_arg_t;

static void s_coord_body(void *arg)
{
  s_body_arg_t *a = arg;
  s_raise_nofile();
  s_coord_main(a->members, a->fds[0], a->fds[1]);
}

static void s_sim_body(void *arg)
{
  s_body_arg_t *a = arg;
  s_raise_nofile();
  s_sim_main(a->endpoint, a->first, a->n, a->fds[0], a->fds[1]);
}

static int s_usage(s_child_t *coord, s_usage_t *u)
{
  if (write(coord->cmd, "u", 1) != 1)
    return -1;
  return s_read_full(coord->out, u, sizeof *u, 5000);
}

static void s_end(s_child_t *c)
{
  close(c->cmd);
  int64_t deadline = s_now_us() + 10 * 1000000LL;
  while (waitpid(c->pid, NULL, WNOHANG) == 0) {
    if (s_now_us() > deadline) {
      kill(c->pid, SIGKILL);
      waitpid(c->pid, NULL, 0);
      break;
    }
    usleep(10000);
  }
  close(c->out);
}

/* ---- the probe -------------------------------------------------------------- */

static void *s_probe_open(void *ctx, const char *endpoint)
{
  int zero = 0;
  void *s = zmq_socket(ctx, ZMQ_DEALER);
  zmq_setsockopt(s, ZMQ_ROUTING_ID, "probe", 5);
  zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
  s_maybe_curve(s);
  zmq_connect(s, endpoint);
  uint8_t join[256];
  size_t n = s_pack_join(join, sizeof join);
  zmq_send(s, join, n, 0);
  return s;
}

/* One KvGet round trip in microseconds, -1 on timeout. */
static int64_t s_probe_once(void *s, uint64_t id)
{
  Herd__Envelope env = HERD__ENVELOPE__INIT;
  Herd__KvGet get = HERD__KV_GET__INIT;
  uint8_t buf[128];
  get.key = "probe", get.generation = 1, get.request_id = id;
  env.body_case = HERD__ENVELOPE__BODY_KV_GET, env.kv_get = &get;
  size_t n = s_pack(&env, buf, sizeof buf);
  int64_t t0 = s_now_us();
  zmq_send(s, buf, n, 0);
  while (s_now_us() - t0 < 2000000) {
    zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 100) != 1)
      continue;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    zmq_msg_recv(&msg, s, 0);
    herd_wire_msg_t w;
    int match = herd_wire_decode(zmq_msg_data(&msg), zmq_msg_size(&msg),
                                 1 << 20, &w) == HERD_OK &&
                w.env->body_case == HERD__ENVELOPE__BODY_KV_VALUE &&
                w.env->kv_value->request_id == id;
    herd_wire_msg_clear(&w);
    zmq_msg_close(&msg);
    if (match)
      return s_now_us() - t0;
  }
  return -1;
}

static int s_cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* The probe is a member too, so it must keep heartbeating while the bench
 * waits for the simulators: one thread owns its socket and either
 * heartbeats (idle) or times KvGet round trips (measuring). */
typedef struct {
  void *sock;
  atomic_int measuring, stop;
  int64_t *rtt;
  int max, n;
  int64_t lost;
} s_probe_t;

static void *s_probe_thread(void *arg)
{
  s_probe_t *p = arg;
  uint8_t hb[64];
  size_t hb_len = s_pack_heartbeat(hb, sizeof hb);
  for (uint64_t id = 1; !atomic_load(&p->stop); id++) {
    if (!atomic_load(&p->measuring)) {
      zmq_send(p->sock, hb, hb_len, ZMQ_DONTWAIT);
      s_drain(p->sock);
      usleep(50 * 1000);
      continue;
    }
    int64_t us = s_probe_once(p->sock, id);
    if (us < 0)
      p->lost++;
    else if (p->n < p->max)
      p->rtt[p->n++] = us;
    usleep(5000);
  }
  return NULL;
}

/* ---- one level -------------------------------------------------------------- */

typedef struct {
  int workers;
  double formation_ms, cpu_percent, p50_ms, p99_ms, max_ms;
  double rss_mib;
  int64_t evictions, probes_lost;
  int ok;
} s_level_t;

static int s_start_sims(s_child_t *sims, int workers, const char *endpoint)
{
  int n_sims = (workers + PER_PROCESS - 1) / PER_PROCESS;
  for (int i = 0; i < n_sims; i++) {
    s_body_arg_t arg = {{0, 0}, 0, endpoint, i * PER_PROCESS,
                        i == n_sims - 1 ? workers - i * PER_PROCESS
                                        : PER_PROCESS};
    sims[i] = s_fork(s_sim_body, &arg);
    char r;
    if (s_read_full(sims[i].out, &r, 1, 30000) != 0)
      return -1;
  }
  return n_sims;
}

static double s_form(s_child_t *sims, int n_sims)
{
  int64_t t0 = s_now_us(), last = 0;
  for (int i = 0; i < n_sims; i++)
    if (write(sims[i].cmd, "G", 1) != 1)
      return -1;
  for (int i = 0; i < n_sims; i++) {
    int64_t done;
    int got = s_read_full(sims[i].out, &done, sizeof done, 90000);
    if (getenv("HERD_BENCH_DEBUG"))
      fprintf(stderr, "sim %d: read %d done %lld t0 %lld\n", i, got,
              (long long)done, (long long)t0);
    if (got != 0 || done < 0)
      return -1;
    if (done > last)
      last = done;
  }
  return (double)(last - t0) / 1000.0;
}

static void s_measure(s_level_t *r, s_child_t *coord, s_probe_t *probe,
                      double window_s)
{
  s_usage_t a, b;
  usleep(1000 * 1000); /* let heartbeat phases settle */
  s_usage(coord, &a);
  int64_t t0 = s_now_us();
  atomic_store(&probe->measuring, 1);
  usleep((useconds_t)(window_s * 1e6));
  atomic_store(&probe->measuring, 0);
  int64_t t1 = s_now_us();
  s_usage(coord, &b);
  usleep(100 * 1000);
  int n = probe->n;
  int64_t *rtt = probe->rtt;
  r->probes_lost = probe->lost;
  qsort(rtt, (size_t)n, sizeof *rtt, s_cmp_i64);
  r->cpu_percent = 100.0 * (double)(b.cpu_us - a.cpu_us) / (double)(t1 - t0);
  r->rss_mib = (double)b.rss_kb / 1024.0;
  r->evictions = b.failures;
  r->p50_ms = n ? rtt[n / 2] / 1000.0 : -1;
  r->p99_ms = n ? rtt[(n * 99) / 100] / 1000.0 : -1;
  r->max_ms = n ? rtt[n - 1] / 1000.0 : -1;
  r->ok = n > 0 && b.members == r->workers + 1;
}

static s_level_t s_run_level(int workers, double window_s, int steady)
{
  s_level_t r = {workers, -1, -1, -1, -1, -1, -1, 0, 0, 0};
  s_child_t sims[MAX_SIMS];
  s_body_arg_t carg = {{0, 0}, workers + 1, NULL, 0, 0};
  s_child_t coord = s_fork(s_coord_body, &carg);
  char endpoint[256];
  if (s_read_full(coord.out, endpoint, sizeof endpoint, 10000) != 0)
    return r;
  /* Fork the simulators before this process has threads of its own. */
  int n_sims = s_start_sims(sims, workers, endpoint);
  void *ctx = zmq_ctx_new();
  s_probe_t probe = {0};
  probe.sock = s_probe_open(ctx, endpoint);
  probe.max = (int)(window_s * 200) + 1;
  probe.rtt = calloc((size_t)probe.max, sizeof *probe.rtt);
  pthread_t thread;
  pthread_create(&thread, NULL, s_probe_thread, &probe);
  usleep(100 * 1000); /* the probe's Join goes first */
  if (n_sims > 0) {
    r.formation_ms = s_form(sims, n_sims);
    s_usage_t u;
    if (r.formation_ms < 0 && s_usage(&coord, &u) == 0)
      fprintf(stderr, "formation of %d failed: coordinator has %lld members, "
              "%lld failures, generation %lld\n", workers,
              (long long)u.members, (long long)u.failures,
              (long long)u.generation);
    if (steady && r.formation_ms >= 0)
      s_measure(&r, &coord, &probe, window_s);
    else
      r.ok = r.formation_ms >= 0;
  }
  atomic_store(&probe.stop, 1);
  pthread_join(thread, NULL);
  free(probe.rtt);
  for (int i = 0; i < n_sims; i++)
    s_end(&sims[i]);
  zmq_close(probe.sock);
  zmq_ctx_term(ctx);
  s_end(&coord);
  return r;
}

static void s_print(FILE *out, const s_level_t *r, int last)
{
  fprintf(out,
          "    {\"workers\": %d, \"formation_ms\": %.1f, \"cpu_percent\": %.1f, "
          "\"latency_p50_ms\": %.3f, \"latency_p99_ms\": %.3f, "
          "\"latency_max_ms\": %.3f, \"rss_mib\": %.1f, \"evictions\": %lld, "
          "\"probes_lost\": %lld, \"ok\": %s}%s\n",
          r->workers, r->formation_ms, r->cpu_percent, r->p50_ms, r->p99_ms,
          r->max_ms, r->rss_mib, (long long)r->evictions,
          (long long)r->probes_lost, r->ok ? "true" : "false", last ? "" : ",");
}

typedef struct {
  int quick;
  const char *out;
  int curve;
} s_args_t;

static const herd_opt_t s_table[] = {
    {"quick", 0, NULL, HERD_OPT_FLAG, NULL, 0, 0, NULL,
     offsetof(s_args_t, quick), "200 / 1,000 workers + a 512 formation run", NULL},
    {"out", 0, NULL, HERD_OPT_STRING, "bench/results/coord_scale.json", 0, 0,
     NULL, offsetof(s_args_t, out), "JSON results", NULL},
    {"curve", 0, NULL, HERD_OPT_FLAG, NULL, 0, 0, NULL,
     offsetof(s_args_t, curve), "CURVE on the control plane, as beyond loopback",
     NULL},
};

int main(int argc, char **argv)
{
  s_args_t args;
  int code = herd_opts_main(
      "coord_scale",
      "usage: coord_scale [--quick] [--curve] [--out FILE]\n"
      "Simulated workers against one coordinator: formation time, CPU,\n"
      "heartbeat handling latency and RSS at 1,000 / 4,000 / 10,000 workers\n"
      "plus a 4,096 formation run.",
      s_table, sizeof s_table / sizeof *s_table, &args, argc, argv, NULL);
  if (code >= 0)
    return code;
  int quick = args.quick;
  const char *out_path = args.out;
  if (args.curve && herd_curve_keypair(s_curve_public, s_curve_secret) != HERD_OK) {
    fprintf(stderr, "coord_scale: %s\n", herd_error_detail());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (!getenv("HERD_LOG_LEVEL"))
    herd_log_set_level(HERD_LOG_ERROR);
  s_raise_nofile();
  const int full_levels[] = {1000, 4000, 10000}, quick_levels[] = {200, 1000};
  const int *levels = quick ? quick_levels : full_levels;
  int n_levels = quick ? 2 : 3;
  s_level_t results[4];
  int ok = 1;
  printf("%8s %12s %8s %10s %10s %9s %9s\n", "workers", "formation_ms",
         "cpu_%", "p50_ms", "p99_ms", "rss_MiB", "evicted");
  for (int i = 0; i <= n_levels; i++) {
    int formation_only = i == n_levels;
    int workers = formation_only ? (quick ? 512 : 4096) : levels[i];
    results[i] = s_run_level(workers, quick ? 2.0 : 10.0, !formation_only);
    s_level_t *r = &results[i];
    printf("%8d %12.1f %8.1f %10.3f %10.3f %9.1f %9lld%s\n", r->workers,
           r->formation_ms, r->cpu_percent, r->p50_ms, r->p99_ms, r->rss_mib,
           (long long)r->evictions, formation_only ? "  (formation run)" : "");
    fflush(stdout);
    ok = ok && r->ok;
  }
  FILE *out = fopen(out_path, "w");
  if (out) {
    fprintf(out, "{\n  \"bench\": \"coord_scale\",\n  \"heartbeat_ms\": 100,\n"
                 "  \"quick\": %s,\n  \"curve\": %s,\n  \"levels\": [\n",
                 quick ? "true" : "false", args.curve ? "true" : "false");
    for (int i = 0; i <= n_levels; i++)
      s_print(out, &results[i], i == n_levels);
    fprintf(out, "  ]\n}\n");
    fclose(out);
    printf("wrote %s\n", out_path);
  }
  return ok ? 0 : 1;
}
