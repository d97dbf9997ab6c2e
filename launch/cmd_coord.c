/* `herd coord`: the coordinator on its own, for workers started by mpirun,
 * srun or Kubernetes. `herd run` embeds the same library code. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "herd/fs.h"
#include "cmds.h"
#include "herd/net.h"

typedef struct {
  const char *bind, *advertise, *iface;
  int64_t port;
  const char *token, *token_file;
  const char *curve, *key_file;
  const char *job_id;
  const char *run_dir;
  int64_t min_workers, max_workers;
  int64_t heartbeat_ms, heartbeat_misses;
  double join_timeout_s;
  int64_t last_call_ms, watchdog_multiple, cooldown_failures, rejoin_window_ms;
  herd_cli_monitor_opts_t monitor;
  const char *run_id;
} s_coord_opts_t;

static const herd_opt_t s_table[] = {
    HERD_OPT(COORD_BIND, s_coord_opts_t, bind),
    HERD_OPT(IFACE, s_coord_opts_t, iface),
    HERD_OPT(COORD_ADVERTISE, s_coord_opts_t, advertise),
    HERD_OPT_AS(COORD_PORT, s_coord_opts_t, port, "port", 'p', NULL),
    HERD_OPT(TOKEN, s_coord_opts_t, token),
    HERD_OPT(TOKEN_FILE, s_coord_opts_t, token_file),
    HERD_OPT(CURVE, s_coord_opts_t, curve),
    HERD_OPT(COORD_KEY_FILE, s_coord_opts_t, key_file),
    HERD_OPT(JOB_ID, s_coord_opts_t, job_id),
    HERD_OPT_AS(RUN_DIR, s_coord_opts_t, run_dir, NULL, 0, "runs/coord"),
    HERD_OPT_AS(MIN, s_coord_opts_t, min_workers, NULL, 0, "1"),
    HERD_OPT(MAX, s_coord_opts_t, max_workers),
    HERD_OPT(HEARTBEAT_MS, s_coord_opts_t, heartbeat_ms),
    HERD_OPT(HEARTBEAT_MISSES, s_coord_opts_t, heartbeat_misses),
    HERD_OPT(JOIN_TIMEOUT, s_coord_opts_t, join_timeout_s),
    HERD_OPT(LAST_CALL_MS, s_coord_opts_t, last_call_ms),
    HERD_OPT(WATCHDOG, s_coord_opts_t, watchdog_multiple),
    HERD_OPT(HOST_COOLDOWN_FAILURES, s_coord_opts_t, cooldown_failures),
    HERD_OPT(REJOIN_WINDOW_MS, s_coord_opts_t, rejoin_window_ms),
    HERD_CLI_MONITOR_OPTIONS(s_coord_opts_t, monitor),
    HERD_OPT(RUN_ID, s_coord_opts_t, run_id),
};

static const char s_usage[] =
    "usage: herd coord [OPTIONS]\n\n"
    "Runs the coordinator until the job is done (rank 0 reports done), the\n"
    "join timeout passes, or SIGINT/SIGTERM. Workers find it through\n"
    "HERD_COORD=tcp://HOST:PORT and the job token (HERD_TOKEN_FILE or\n"
    "HERD_TOKEN). Restarted with the same --port, token and --run-dir, it\n"
    "adopts the running workers.\n"
    "Workers on other hosts: --bind ADDR (or --iface IFACE) on the network\n"
    "they share; the printed HERD_COORD is the address to give them. Beyond\n"
    "loopback the control plane runs CURVE (encrypted, each worker's session\n"
    "bound to its key): the printed HERD_COORD_KEY is the public key they\n"
    "need too; the secret one is --key-file's, or RUN_DIR/coord.key.";

static int s_wait_for_job(herd_coord_t *coord)
{
  herd_coord_stats_t stats;
  for (;;) {
    usleep(100 * 1000);
    if (herd_coord_stats(coord, &stats) != HERD_OK)
      continue;
    if (stats.done) {
      herd_coord_finish(coord, 1, NULL);
      printf("herd coord: job done at step %lld\n", (long long)stats.step);
      return HERD_EXIT_OK;
    }
    if (stats.failed) {
      herd_coord_finish(coord, 0, stats.failure);
      fprintf(stderr, "herd coord: error: %s\n", stats.failure);
      return HERD_EXIT_FAILED;
    }
    if (herd_cli_signal_received()) {
      herd_coord_finish(coord, 0, "coordinator interrupted");
      fprintf(stderr, "herd coord: interrupted\n");
      return HERD_EXIT_INTERRUPTED;
    }
  }
}

/* The CURVE secret key: --key-file's, else RUN_DIR/coord.key, made (mode
 * 600) when missing so that a restarted coordinator keeps its key and its
 * workers. secret: 41 bytes. */
static herd_result_t s_secret_key(const s_coord_opts_t *opts, char *secret)
{
  char path[4200], buf[64];
  size_t len = 0;
  if (opts->key_file)
    snprintf(path, sizeof path, "%s", opts->key_file);
  else
    snprintf(path, sizeof path, "%s/coord.key", opts->run_dir);
  herd_result_t rc = herd_read_secret_file(path, buf, sizeof buf, &len);
  if (rc == HERD_ENOENT && !opts->key_file) {
    char public_key[41];
    HERD_CHECK(herd_curve_keypair(public_key, secret));
    return herd_write_secret_atomic(path, secret, 40);
  }
  HERD_CHECK(rc);
  if (len != 40)
    return herd_error_set(HERD_EINVAL, "CURVE key file '%s': not a secret "
                          "key (40 characters of Z85; `herd keygen` makes "
                          "one)", path);
  memcpy(secret, buf, 41);
  return HERD_OK;
}

int herd_cmd_coord(int argc, char **argv)
{
  s_coord_opts_t opts = {0};
  int first = 0;
  int code = herd_cli_parse(s_usage, s_table, sizeof s_table / sizeof *s_table,
                            &opts, argc, argv, &first);
  if (code >= 0)
    return code;
  /* herd run's --min 0 means "-n"; a standalone coordinator has no -n. */
  if (opts.min_workers < 1) {
    fprintf(stderr, "herd coord: error: --min: %lld is below 1\n",
            (long long)opts.min_workers);
    return HERD_EXIT_USAGE;
  }
  char token[HERD_TOKEN_MAX];
  if ((code = herd_cli_token("coord", opts.token, opts.token_file, argc,
                             argv, token, sizeof token)) != 0)
    return code;
  /* Only a token made here is printed: one the user gave is theirs already,
   * and a log is no place for it. */
  int made_token = !token[0];
  if (made_token && herd_cli_random_token(token, sizeof token) != HERD_OK)
    return herd_cli_fail("coord", HERD_ESYS);
  opts.token = token;
  herd_result_t rc = herd_mkdir_p(opts.run_dir, 0777);
  if (rc != HERD_OK)
    return herd_cli_fail("coord", rc);
  char iface_addr[HERD_NET_ADDR_MAX];
  if (opts.iface) {
    if ((rc = herd_net_advertise_addr(opts.iface, NULL, iface_addr,
                                      sizeof iface_addr)) != HERD_OK)
      return herd_cli_fail("coord", rc == HERD_ENOENT ? HERD_EINVAL : rc);
    if (!strcmp(opts.bind, "127.0.0.1")) /* the default: take the iface's */
      opts.bind = iface_addr;
    if (!opts.advertise)
      opts.advertise = iface_addr;
  }
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.bind_host = opts.bind;
  config.advertise_host = opts.advertise;
  config.port = (int)opts.port;
  config.token = opts.token;
  config.job_id = opts.job_id;
  config.run_dir = opts.run_dir;
  config.continue_run = 1; /* a restart picks up the run dir where it was */
  config.min_workers = (int)opts.min_workers;
  config.max_workers = (int)(opts.max_workers ? opts.max_workers : opts.min_workers);
  config.heartbeat_interval_ms = (int)opts.heartbeat_ms;
  config.heartbeat_misses = (int)opts.heartbeat_misses;
  config.join_timeout_ms = (int)(opts.join_timeout_s * 1000);
  config.last_call_ms = opts.last_call_ms ? (int)opts.last_call_ms : -1;
  config.watchdog_multiple = (int)opts.watchdog_multiple;
  config.host_cooldown_failures = (int)opts.cooldown_failures;
  config.rejoin_window_ms = (int)opts.rejoin_window_ms;
  herd_cli_monitor_apply(&opts.monitor, &config);
  config.run_id = opts.run_id;
  char secret_key[41] = "";
  if (herd_cli_curve_on("coord", opts.curve, config.bind_host)) {
    if ((rc = s_secret_key(&opts, secret_key)) != HERD_OK)
      return herd_cli_fail("coord", rc);
    config.curve_secret_key = secret_key;
  }
  herd_coord_t *coord = NULL;
  herd_cli_catch_signals();
  rc = herd_coord_new(&config, &coord);
  memset(secret_key, 0, sizeof secret_key);
  if (rc != HERD_OK)
    return herd_cli_fail("coord", rc);
  printf("herd coord: listening on %s\nHERD_COORD=%s\n",
         herd_coord_endpoint(coord), herd_coord_endpoint(coord));
  if (herd_coord_public_key(coord)) /* not a secret: workers need it */
    printf("HERD_COORD_KEY=%s\n", herd_coord_public_key(coord));
  if (made_token)
    printf("HERD_TOKEN=%s\n", opts.token);
  const char *http_url = herd_cli_announce_http(coord);
  if (http_url)
    printf("HERD_HTTP=%s\n", http_url);
  fflush(stdout);
  code = s_wait_for_job(coord);
  herd_coord_destroy(&coord);
  herd_cli_write_report("herd coord", opts.run_dir);
  return code;
}
