/* Fault tests for the gloo backend, with real processes (label fault).
 *
 * kill: 4 ranks loop over 64 MiB all-reduces; the parent kill -9s one rank
 *   in the middle. Every survivor's call must return an error within 1 s of
 *   the kill, and the survivors must then build the next generation's
 *   communicator (3 ranks, renumbered) and all-reduce correctly.
 * abort: 3 ranks; one stays alive but never joins the all-reduce, so the
 *   others block. A watchdog thread calls herd_comm_abort(); the blocked
 *   call must return HERD_EABORTED within 1 s, long before the 20 s timeout.
 * bystander: 2 ranks; each opens a TCP connection of its own from the very
 *   local address of one of its gloo sockets (Linux gives one ephemeral
 *   port to connections to different destinations: a worker's connection
 *   to the coordinator was seen sharing it), then aborts its communicator.
 *   The abort must shut gloo's sockets only: the bystander still echoes.
 * Children report (rank, result, time) over a pipe; CLOCK_MONOTONIC is
 * shared by all processes on the machine, so latencies compare directly.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "herd/comm.h"
#include "test_comm_store.h"

#define S_WORLD 4
#define S_VICTIM 1
#define S_COUNT ((64u << 20) / 4)
#define S_MAX_LOOPS 200

typedef struct {
  int rank;
  int result;     /* herd_result_t of the failing call */
  double t_error; /* monotonic seconds when it returned */
  int recovered;  /* next generation worked */
} s_report_t;

static int s_pipe[2];

static double s_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static herd_result_t s_comm(int rank, int world, int64_t generation,
                            herd_comm_store_t *store, herd_comm_t **comm)
{
  herd_comm_config_t config = HERD_COMM_CONFIG_INIT;
  config.backend = HERD_BACKEND_GLOO;
  config.rank = rank;
  config.world_size = world;
  config.generation = generation;
  config.store = store;
  config.timeout_ms = 20000;
  return herd_comm_new(&config, comm);
}

/* The next generation: survivors renumbered, one small checked all-reduce. */
static int s_recover(int rank, const char *dir, herd_comm_store_t *store)
{
  int new_rank = rank < S_VICTIM ? rank : rank - 1;
  herd_comm_t *comm = NULL;
  if (s_comm(new_rank, S_WORLD - 1, 2, store, &comm) != HERD_OK) {
    fprintf(stderr, "rank %d: generation 2: %s\n", rank, herd_error_detail());
    return 0;
  }
  int64_t values[1000];
  for (int i = 0; i < 1000; i++)
    values[i] = i + new_rank;
  herd_result_t rc = herd_comm_allreduce(comm, values, values, 1000,
                                         HERD_DTYPE_I64, HERD_OP_SUM);
  int wrong = 0;
  for (int i = 0; i < 1000; i++)
    wrong += values[i] != 3 * i + 3;
  herd_comm_destroy(&comm);
  (void)dir;
  return rc == HERD_OK && wrong == 0;
}

static int s_kill_rank(int rank, int world, const char *dir, void *arg)
{
  (void)arg;
  herd_comm_store_t *store = NULL;
  herd_comm_t *comm = NULL;
  if (herd_test_file_store_new(dir, &store) != HERD_OK ||
      s_comm(rank, world, 1, store, &comm) != HERD_OK) {
    fprintf(stderr, "rank %d: %s\n", rank, herd_error_detail());
    return 1;
  }
  float *buf = calloc(S_COUNT, sizeof(float));
  s_report_t report = {rank, HERD_OK, 0, 0};
  (void)!write(s_pipe[1], &report, sizeof report); /* "started" */
  for (int loop = 0; loop < S_MAX_LOOPS && report.result == HERD_OK; loop++)
    report.result = herd_comm_allreduce(comm, buf, buf, S_COUNT,
                                        HERD_DTYPE_F32, HERD_OP_SUM);
  report.t_error = s_now();
  herd_comm_destroy(&comm);
  free(buf);
  if (report.result != HERD_OK)
    report.recovered = s_recover(rank, dir, store);
  (void)!write(s_pipe[1], &report, sizeof report);
  herd_comm_store_destroy(&store);
  return 0;
}

static int s_test_kill(void)
{
  char dir[4096];
  pid_t pids[S_WORLD];
  if (herd_test_store_dir(dir, sizeof dir) != HERD_OK || pipe(s_pipe) != 0)
    return 1;
  if (herd_test_spawn(S_WORLD, pids, s_kill_rank, dir, NULL) != 0)
    return 1;
  s_report_t report;
  for (int started = 0; started < S_WORLD;)
    if (read(s_pipe[0], &report, sizeof report) == sizeof report)
      started++;
  usleep(300 * 1000); /* well inside the first large all-reduces */
  double t_kill = s_now();
  kill(pids[S_VICTIM], SIGKILL);
  waitpid(pids[S_VICTIM], NULL, 0);
  pids[S_VICTIM] = 0;
  int failures = 0;
  for (int got = 0; got < S_WORLD - 1; got++) {
    if (read(s_pipe[0], &report, sizeof report) != sizeof report) {
      failures++;
      break;
    }
    double latency = report.t_error - t_kill;
    int ok = report.result != HERD_OK && latency < 1.0 && report.recovered;
    printf("kill: rank %d: %s after %.3f s, next generation %s\n", report.rank,
           herd_strerror(report.result), latency,
           report.recovered ? "works" : "FAILED");
    failures += !ok;
  }
  for (int r = 0; r < S_WORLD; r++)
    if (pids[r] > 0)
      waitpid(pids[r], NULL, 0);
  close(s_pipe[0]);
  close(s_pipe[1]);
  herd_test_store_dir_remove(dir);
  return failures;
}

typedef struct {
  herd_comm_t *comm;
  double t_abort;
} s_watchdog_t;

/* A rank's store and generation-1 communicator (both to destroy). */
static herd_result_t s_open(int rank, int world, const char *dir,
                            herd_comm_store_t **store, herd_comm_t **comm)
{
  herd_result_t rc = herd_test_file_store_new(dir, store);
  return rc == HERD_OK ? s_comm(rank, world, 1, *store, comm) : rc;
}

static void *s_watchdog(void *arg)
{
  s_watchdog_t *w = arg;
  usleep(300 * 1000);
  w->t_abort = s_now();
  herd_comm_abort(w->comm);
  return NULL;
}

static int s_abort_rank(int rank, int world, const char *dir, void *arg)
{
  (void)arg;
  herd_comm_store_t *store = NULL;
  herd_comm_t *comm = NULL;
  if (s_open(rank, world, dir, &store, &comm) != HERD_OK)
    return 1;
  float x[1024] = {0};
  int failed = 0;
  if (rank == world - 1) {
    usleep(1500 * 1000); /* alive, but never joins */
  } else {
    s_watchdog_t w = {comm, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, s_watchdog, &w);
    herd_result_t rc = herd_comm_allreduce(comm, x, x, 1024, HERD_DTYPE_F32,
                                           HERD_OP_SUM);
    double latency = s_now() - w.t_abort;
    pthread_join(thread, NULL);
    printf("abort: rank %d: %s %.3f s after herd_comm_abort\n", rank,
           herd_strerror(rc), latency);
    failed = rc != HERD_EABORTED || latency > 1.0;
  }
  herd_comm_destroy(&comm);
  herd_comm_store_destroy(&store);
  return failed;
}

/* `world` ranks running `body` over a fresh file store; failed ranks. */
static int s_run_ranks(int world, herd_test_rank_fn body)
{
  char dir[4096];
  pid_t pids[8];
  if (world > 8 || herd_test_store_dir(dir, sizeof dir) != HERD_OK)
    return 1;
  int failures = herd_test_spawn(world, pids, body, dir, NULL) != 0;
  failures += herd_test_wait_all(world, pids);
  herd_test_store_dir_remove(dir);
  return failures;
}

static int s_test_abort(void) { return s_run_ranks(3, s_abort_rank); }

/* The local address of a connected TCP socket of this process (a gloo
 * pair's: the only ones the child has). 0 when there is none. */
static int s_gloo_local_address(struct sockaddr_in *out)
{
  DIR *dir = opendir("/proc/self/fd");
  int found = 0;
  struct dirent *entry;
  while (dir && !found && (entry = readdir(dir))) {
    int fd = atoi(entry->d_name);
    struct stat st;
    struct sockaddr_in peer;
    socklen_t len = sizeof peer, out_len = sizeof *out;
    found = fd > 2 && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) &&
            getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
            peer.sin_family == AF_INET &&
            getsockname(fd, (struct sockaddr *)out, &out_len) == 0;
  }
  if (dir)
    closedir(dir);
  return found;
}

/* A connection from `local` to an echo listener of our own; 0 on success. */
static int s_bystander(const struct sockaddr_in *local, int *listener,
                       int *client, int *server)
{
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int on = 1;
  *listener = socket(AF_INET, SOCK_STREAM, 0);
  *client = socket(AF_INET, SOCK_STREAM, 0);
  if (*listener < 0 || *client < 0 ||
      bind(*listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(*listener, 1) != 0 ||
      getsockname(*listener, (struct sockaddr *)&addr, &len) != 0 ||
      setsockopt(*client, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      bind(*client, (const struct sockaddr *)local, sizeof *local) != 0 ||
      connect(*client, (struct sockaddr *)&addr, sizeof addr) != 0)
    return -1;
  *server = accept(*listener, NULL, NULL);
  return *server < 0 ? -1 : 0;
}

static int s_bystander_rank(int rank, int world, const char *dir, void *arg)
{
  (void)arg;
  herd_comm_store_t *store = NULL;
  herd_comm_t *comm = NULL;
  if (s_open(rank, world, dir, &store, &comm) != HERD_OK)
    return 1;
  float x[16] = {0};
  struct sockaddr_in local;
  int listener = -1, client = -1, server = -1, failed = 1;
  /* Connected pairs first; then a connection of ours on a gloo socket's
   * local address. */
  if (herd_comm_allreduce(comm, x, x, 16, HERD_DTYPE_F32, HERD_OP_SUM) ==
          HERD_OK &&
      s_gloo_local_address(&local) &&
      s_bystander(&local, &listener, &client, &server) == 0) {
    /* Both ranks set up before either aborts (an abort ends the peer's
     * gloo sockets too); this call's result does not matter. */
    herd_comm_allreduce(comm, x, x, 16, HERD_DTYPE_F32, HERD_OP_SUM);
    herd_comm_abort(comm);
    char byte = 'x', echoed = 0;
    int sent = send(client, &byte, 1, MSG_NOSIGNAL) == 1;
    int got = sent && recv(server, &echoed, 1, 0) == 1;
    printf("bystander: rank %d: own connection from port %d %s the abort\n",
           rank, ntohs(local.sin_port), got && echoed == 'x' ? "survived" : "was cut by");
    failed = !(got && echoed == 'x');
  } else {
    printf("bystander: rank %d: could not set up its own connection\n", rank);
  }
  if (server >= 0)
    close(server);
  if (client >= 0)
    close(client);
  if (listener >= 0)
    close(listener);
  herd_comm_destroy(&comm);
  herd_comm_store_destroy(&store);
  return failed;
}

static int s_test_bystander(void) { return s_run_ranks(2, s_bystander_rank); }

int main(int argc, char **argv)
{
  if (!herd_comm_have_gloo()) {
    printf("SKIP: this build has no gloo backend\n");
    return 77;
  }
  signal(SIGPIPE, SIG_IGN); /* writes to a dead peer are errors, not deaths */
  const char *which = argc > 1 ? argv[1] : "all";
  int failures = 0;
  if (strcmp(which, "kill") == 0 || strcmp(which, "all") == 0)
    failures += s_test_kill();
  if (strcmp(which, "abort") == 0 || strcmp(which, "all") == 0)
    failures += s_test_abort();
  if (strcmp(which, "bystander") == 0 || strcmp(which, "all") == 0)
    failures += s_test_bystander();
  printf("fault: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
