/* `herd top`: a refreshing terminal view of a running job, like top(1).
 *
 * A libcurl client of the coordinator's /status (coord_http.c): every
 * --interval seconds it fetches the JSON and redraws an 80-column frame: a
 * job line (samples/s, step time, ETA, generation, world size), one row per
 * rank with its split of step time, stragglers flagged, and the recent
 * events. --once prints a single frame without clearing the screen, for
 * scripts. The coordinator is found by --url, else $HERD_HTTP, else the
 * newest `http` event in <run-dir>/events.jsonl (`herd run` records it).
 *
 * A rank is a straggler when its step time, or its busy time (compute plus
 * data: in synchronous data parallelism every rank's step ends together in
 * the all-reduce, and the slow one is the one that waits least), is above
 * STRAGGLER_FACTOR times the median over the ranks (SLOW). A rank on a
 * host whose network is the bottleneck (coord_links.c: its best TCP link
 * runs below a quarter of the median) is marked NET and named below the
 * table.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "cmds.h"

#define STRAGGLER_FACTOR 1.5
#define TOP_BODY_MAX ((size_t)16 << 20)
#define TOP_WIDTH 80

typedef struct {
  const char *url;
  const char *coord;
  const char *run_dir;
  double interval_s;
  int once;
  int64_t iterations;
  int64_t rows;
  double timeout_s;
  const char *token, *token_file;
} s_top_opts_t;

static const herd_opt_t s_table[] = {
    HERD_OPT(HTTP, s_top_opts_t, url),
    HERD_OPT(COORD, s_top_opts_t, coord),
    HERD_OPT_AS(RUN_DIR, s_top_opts_t, run_dir, NULL, 0, HERD_OPT_NO_DEFAULT),
    HERD_OPT(TOP_INTERVAL, s_top_opts_t, interval_s),
    HERD_OPT(TOP_ONCE, s_top_opts_t, once),
    HERD_OPT(TOP_ITERATIONS, s_top_opts_t, iterations),
    HERD_OPT(TOP_ROWS, s_top_opts_t, rows),
    HERD_OPT(TOP_TIMEOUT, s_top_opts_t, timeout_s),
    HERD_OPT(TOKEN, s_top_opts_t, token),
    HERD_OPT(TOKEN_FILE, s_top_opts_t, token_file),
};

static const char s_usage[] =
    "usage: herd top [--url URL | --coord HOST:PORT | --run-dir DIR]\n"
    "                [--interval S] [--once]\n\n"
    "Shows a running job's throughput, step time, ETA and ranks, refreshed\n"
    "like top. Stragglers (step or busy time > 1.5x the median) are marked.\n"
    "A coordinator whose HTTP server is exposed beyond loopback answers\n"
    "/status only with the job token (--token-file or HERD_TOKEN[_FILE]).";

/* ---- fetching ---------------------------------------------------------- */

typedef struct {
  char *data;
  size_t len;
  int too_big;
} s_body_t;

static size_t s_collect(char *data, size_t size, size_t n, void *arg)
{
  s_body_t *body = arg;
  size_t add = size * n;
  if (body->len + add > TOP_BODY_MAX) {
    body->too_big = 1;
    return 0;
  }
  char *grown = realloc(body->data, body->len + add + 1);
  if (!grown)
    return 0;
  memcpy(grown + body->len, data, add);
  body->data = grown;
  body->len += add;
  body->data[body->len] = '\0';
  return add;
}

static json_t *s_fetch(CURL *curl, const char *url, double timeout_s,
                       char *error, size_t cap)
{
  s_body_t body = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(timeout_s * 1000));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  json_t *status_json = NULL;
  json_error_t parse_error;
  if (code != CURLE_OK)
    snprintf(error, cap, "%.300s: %s", url,
             body.too_big ? "answer too big" : curl_easy_strerror(code));
  else if (status != 200)
    snprintf(error, cap, "%.300s: HTTP %ld", url, status);
  else if (!(status_json = json_loadb(body.data ? body.data : "", body.len, 0,
                                      &parse_error)))
    snprintf(error, cap, "%.300s: not JSON: %.150s", url, parse_error.text);
  free(body.data);
  return status_json;
}

/* ---- discovery ------------------------------------------------------- */

/* The newest `http` event's url in <run_dir>/events.jsonl. */
static herd_result_t s_url_from_run_dir(const char *run_dir, char *out,
                                        size_t cap)
{
  char path[4200], line[8192];
  snprintf(path, sizeof path, "%s/events.jsonl", run_dir);
  FILE *file = fopen(path, "r");
  if (!file)
    return herd_error_set(HERD_ENOENT, "cannot read %s", path);
  out[0] = '\0';
  while (fgets(line, sizeof line, file)) {
    if (!strstr(line, "\"http\""))
      continue;
    json_error_t error;
    json_t *event = json_loads(line, 0, &error);
    const char *name = json_string_value(json_object_get(event, "event"));
    const char *url = json_string_value(json_object_get(event, "url"));
    if (name && url && !strcmp(name, "http"))
      snprintf(out, cap, "%s", url);
    json_decref(event);
  }
  fclose(file);
  return out[0] ? HERD_OK
                : herd_error_set(HERD_ENOENT,
                                 "no http event in %s "
                                 "(started with --http off?)",
                                 path);
}

static herd_result_t s_status_url(const s_top_opts_t *opts, char *out,
                                  size_t cap)
{
  char base[2048];
  if (opts->url)
    snprintf(base, sizeof base, "%s", opts->url);
  else if (opts->coord)
    snprintf(base, sizeof base, "http://%s/", opts->coord);
  else if (opts->run_dir)
    HERD_CHECK(s_url_from_run_dir(opts->run_dir, base, sizeof base));
  else
    return herd_error_set(HERD_EINVAL, "no coordinator: pass --url, "
                                       "--coord or --run-dir, or set "
                                       "HERD_HTTP");
  size_t len = strlen(base);
  if (len >= 7 && !strcmp(base + len - 7, "/status"))
    snprintf(out, cap, "%s", base);
  else
    snprintf(out, cap, "%s%sstatus", base,
             len && base[len - 1] == '/' ? "" : "/");
  return HERD_OK;
}

/* ---- drawing ------------------------------------------------------------- */

static double s_num(json_t *obj, const char *key)
{
  json_t *value = json_object_get(obj, key);
  return json_is_number(value) ? json_number_value(value) : NAN;
}

static const char *s_str(json_t *obj, const char *key)
{
  const char *value = json_string_value(json_object_get(obj, key));
  return value ? value : "";
}

/* Prints one line cut to the terminal width. */
static void s_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void s_line(const char *fmt, ...)
{
  char text[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(text, sizeof text, fmt, args);
  va_end(args);
  text[TOP_WIDTH] = '\0';
  printf("%s\n", text);
}

static void s_eta(double seconds, char *out, size_t cap)
{
  if (!isfinite(seconds) || seconds < 0) {
    snprintf(out, cap, "-");
    return;
  }
  long s = lround(seconds);
  if (s >= 3600)
    snprintf(out, cap, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else if (s >= 60)
    snprintf(out, cap, "%ldm%02lds", s / 60, s % 60);
  else
    snprintf(out, cap, "%lds", s);
}

static void s_bytes(double bytes, char *out, size_t cap)
{
  const char *units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1000 && u < 4) {
    bytes /= 1000;
    u++;
  }
  snprintf(out, cap, "%.1f %s", bytes, units[u]);
}

static void s_draw_job(json_t *s)
{
  char clock[16], eta[32];
  time_t now = (time_t)s_num(s, "time");
  struct tm tm;
  strftime(clock, sizeof clock, "%H:%M:%S", localtime_r(&now, &tm));
  s_eta(s_num(s, "eta_seconds"), eta, sizeof eta);
  s_line("herd top - %s/%s  %s  gen %.0f  world %.0f  members %.0f  %s",
         s_str(s, "job"), s_str(s, "run_id"), s_str(s, "job_state"),
         s_num(s, "generation"), s_num(s, "world_size"),
         s_num(s, "member_count"), clock);
  double total = s_num(s, "total_steps");
  char of[32] = "";
  if (total > 0)
    snprintf(of, sizeof of, "/%.0f", total);
  s_line("step %.0f%s  epoch %.0f  loss %.4f  %.0f samples/s  step %.1f ms  "
         "ETA %s",
         s_num(s, "step"), of, s_num(s, "epoch"), s_num(s, "loss"),
         s_num(s, "samples_per_second"), s_num(s, "step_seconds") * 1e3, eta);
  json_t *mfu = json_object_get(s, "mfu");
  if (json_is_number(mfu))
    s_line("MFU %.1f%%  (%.1f of %.1f GFLOP/s peak)",
           json_number_value(mfu) * 100,
           s_num(s, "model_flops_per_second") / 1e9,
           s_num(s, "peak_flops_per_second") / 1e9);
  json_t *ckpt = json_object_get(s, "last_checkpoint");
  char last[128] = "none";
  if (json_is_object(ckpt)) {
    char size[32];
    s_bytes(s_num(ckpt, "bytes"), size, sizeof size);
    snprintf(last, sizeof last, "step %.0f, %.0f s ago, %.2f s, %s",
             s_num(ckpt, "step"), s_num(ckpt, "age_seconds"),
             s_num(ckpt, "duration_seconds"), size);
  }
  s_line("failures %.0f  restarts %.0f  last checkpoint %s",
         s_num(s, "failures"), s_num(s, "restarts"), last);
  if (s_str(s, "failure")[0])
    s_line("failure: %s", s_str(s, "failure"));
}

static int s_cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of `key` (or of compute + data with key NULL) over members. */
static double s_median(json_t *members, const char *key)
{
  size_t n = json_array_size(members), count = 0, i;
  double *values = calloc(n + 1, sizeof *values);
  json_t *m;
  if (!values)
    return 0;
  json_array_foreach(members, i, m)
  {
    double v = key ? s_num(m, key)
                   : s_num(m, "compute_seconds") + s_num(m, "data_seconds");
    if (isfinite(v))
      values[count++] = v;
  }
  qsort(values, count, sizeof *values, s_cmp_double);
  double median = count ? values[count / 2] : 0;
  free(values);
  return median;
}

static void s_draw_ranks(json_t *s, int64_t max_rows)
{
  json_t *members = json_object_get(s, "members");
  double step_median = s_median(members, "step_seconds");
  double busy_median = s_median(members, NULL);
  size_t i;
  json_t *m;
  printf("\n");
  s_line("%5s %-12.12s %-7s %9s %9s %7s %6s %6s %6s", "RANK", "HOST", "STATE",
         "STEP", "SAMPLES/S", "STEP ms", "COMP", "COMM", "DATA");
  json_array_foreach(members, i, m)
  {
    if ((int64_t)i >= max_rows) {
      s_line("  ... %zu more", json_array_size(members) - i);
      break;
    }
    double step = s_num(m, "step_seconds");
    double busy = s_num(m, "compute_seconds") + s_num(m, "data_seconds");
    int slow = (step_median > 0 && step > STRAGGLER_FACTOR * step_median) ||
               (busy_median > 0 && busy > STRAGGLER_FACTOR * busy_median);
    if (json_is_true(json_object_get(m, "network_straggler")))
      slow = 2;
    s_line("%5.0f %-12.12s %-7.7s %9.0f %9.0f %7.1f %6.1f %6.1f %6.1f%s",
           s_num(m, "rank"), s_str(m, "host"), s_str(m, "state"),
           s_num(m, "step"), s_num(m, "samples_per_second"), step * 1e3,
           s_num(m, "compute_seconds") * 1e3, s_num(m, "comm_seconds") * 1e3,
           s_num(m, "data_seconds") * 1e3,
           slow == 2 ? " NET" : slow ? " SLOW" : "");
  }
  json_t *net = json_object_get(s, "network_stragglers");
  json_array_foreach(net, i, m)
  s_line("straggler: %s (rank %.0f), its network: best link %.0f Mbit/s, "
         "median %.0f", s_str(m, "host"), s_num(m, "rank"),
         s_num(m, "link_mbps"), s_num(m, "median_mbps"));
}

static void s_draw_events(json_t *s)
{
  json_t *events = json_object_get(s, "events");
  size_t n = json_array_size(events), first = n > 6 ? n - 6 : 0;
  printf("\nrecent events\n");
  for (size_t i = first; i < n; i++) {
    json_t *e = json_array_get(events, i);
    char clock[16];
    time_t ts = (time_t)s_num(e, "ts");
    struct tm tm;
    strftime(clock, sizeof clock, "%H:%M:%S", localtime_r(&ts, &tm));
    s_line(" %s %-16s %s", clock, s_str(e, "event"), s_str(e, "detail"));
  }
}

/* ---- the loop ----------------------------------------------------------- */

static int s_finished(json_t *status)
{
  const char *state = s_str(status, "job_state");
  return !strcmp(state, "finished") || !strcmp(state, "failed");
}

static int s_loop(const s_top_opts_t *opts, const char *url, CURL *curl)
{
  char error[512] = "";
  int misses = 0;
  for (int64_t frame = 0; !opts->iterations || frame < opts->iterations;
       frame++) {
    json_t *status = s_fetch(curl, url, opts->timeout_s, error, sizeof error);
    if (!status && (opts->once || ++misses >= 3 || frame == 0)) {
      fprintf(stderr, "herd top: error: %s\n", error);
      return HERD_EXIT_FAILED;
    }
    if (status) {
      misses = 0;
      if (!opts->once)
        printf("\033[H\033[2J");
      s_draw_job(status);
      s_draw_ranks(status, opts->rows);
      s_draw_events(status);
      fflush(stdout);
    }
    int done = status && s_finished(status);
    json_decref(status);
    if (opts->once || done || herd_cli_signal_received())
      return HERD_EXIT_OK;
    usleep((useconds_t)(opts->interval_s * 1e6));
    if (herd_cli_signal_received())
      return HERD_EXIT_OK;
  }
  return HERD_EXIT_OK;
}

int herd_cmd_top(int argc, char **argv)
{
  s_top_opts_t opts = {0};
  int first = 0;
  int code = herd_cli_parse(s_usage, s_table, sizeof s_table / sizeof *s_table,
                            &opts, argc, argv, &first);
  if (code >= 0)
    return code;
  char url[2200];
  herd_result_t rc = s_status_url(&opts, url, sizeof url);
  if (rc != HERD_OK)
    return herd_cli_fail("top", rc);
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return herd_cli_fail("top", HERD_ESYS);
  CURL *curl = curl_easy_init();
  if (!curl) {
    curl_global_cleanup();
    return herd_cli_fail("top", HERD_ENOMEM);
  }
  /* The job token, when there is one, as a bearer token: an exposed
   * coordinator's /status asks for it. */
  char token[HERD_TOKEN_MAX], header[HERD_TOKEN_MAX + 32];
  struct curl_slist *headers = NULL;
  code = herd_cli_token("top", opts.token, opts.token_file, argc, argv, token,
                        sizeof token);
  if (code == 0 && token[0]) {
    snprintf(header, sizeof header, "Authorization: Bearer %s", token);
    headers = curl_slist_append(NULL, header);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  }
  if (code == 0) {
    herd_cli_catch_signals();
    code = s_loop(&opts, url, curl);
  }
  curl_easy_cleanup(curl);
  curl_slist_free_all(headers);
  curl_global_cleanup();
  return code;
}
