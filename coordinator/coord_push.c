/* Outbound monitoring: Pushgateway pushes and alert webhooks (libcurl).
 *
 * Batch jobs may end before Prometheus scrapes them, so the coordinator can
 * PUT its /metrics text to a Pushgateway (grouping key job/<job id>/run/<run
 * id>) every push_interval_ms and once more when it stops. Alerts (member
 * failed, job failed, job completed, and a stall: no step progress for
 * stall_alert_ms while the job runs) are POSTed as JSON to a webhook.
 *
 * None of this may slow training or the ROUTER thread. Events arrive on the
 * coordinator thread (with coord->lock held) and are only formatted and put
 * in a bounded queue (full: dropped and counted); one sender thread here
 * does all network I/O, with connect and transfer timeouts and a few
 * retries. At shutdown the thread makes the final push and drains the queue
 * within COORD_PUSH_DRAIN_MS, then gives up on what is left.
 *
 * Lock order: coord->lock, then push->lock (the thread never holds push->lock
 * while taking coord->lock).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "herd/clock.h"
#include "coord_internal.h"
#include "herd/herd.h"

#define COORD_ALERT_QUEUE 64
#define COORD_ALERT_ATTEMPTS 3
#define COORD_PUSH_TIMEOUT_MS 3000
#define COORD_PUSH_DRAIN_MS 10000
#define COORD_PUSH_URL_MAX 2048

struct coord_push {
  herd_coord_t *coord;
  char gateway_url[COORD_PUSH_URL_MAX]; /* "" none */
  char webhook_url[COORD_PUSH_URL_MAX]; /* "" none */
  int interval_ms, stall_ms;
  pthread_t thread;
  int started;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int stop;
  int64_t stop_deadline_ms;
  char *queue[COORD_ALERT_QUEUE]; /* JSON texts, ring */
  int head, count;
  int64_t dropped;
  int stalled; /* a stall alert went out; reset on progress */
};

/* ---- building alerts (coord->lock held) -----------------------------------
 */

static double s_unix_now(void)
{
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

/* The alert name for an event line, or NULL when it is not one. */
static const char *s_alert_name(const char *event, json_t *line,
                                const char **severity)
{
  *severity = "critical";
  if (!strcmp(event, "member_failed") || !strcmp(event, "job_failed"))
    return event;
  if (!strcmp(event, "done")) {
    if (json_is_true(json_object_get(line, "ok"))) {
      *severity = "info";
      return "job_completed";
    }
    return "job_failed";
  }
  return NULL;
}

static char *s_alert_text(herd_coord_t *coord, const char *alert,
                          const char *severity, const char *summary,
                          json_t *details)
{
  json_t *j = json_pack(
      "{s:s, s:s, s:s, s:o, s:o, s:f, s:o, s:O}", "source", "herd", "alert",
      alert, "severity", severity, "job", coord_json_string(coord->job_id),
      "run_id",
      coord_json_string(coord->run_id ? coord->run_id : coord->job_id), "ts",
      s_unix_now(), "summary", coord_json_string(summary), "details",
      details ? details : json_null());
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  return text;
}

static void s_summary(const char *alert, json_t *line, char *out, size_t cap)
{
  const char *reason = json_string_value(json_object_get(line, "reason"));
  if (!strcmp(alert, "member_failed"))
    snprintf(out, cap, "rank %lld (pid %lld on %s) failed: %s",
             (long long)json_integer_value(json_object_get(line, "rank")),
             (long long)json_integer_value(json_object_get(line, "pid")),
             json_string_value(json_object_get(line, "host"))
                 ? json_string_value(json_object_get(line, "host"))
                 : "?",
             reason ? reason : "?");
  else if (!strcmp(alert, "job_completed"))
    snprintf(out, cap, "job completed");
  else
    snprintf(out, cap, "job failed: %s", reason ? reason : "?");
}

/* Steals `text`; drops it when the queue is full. */
static void s_enqueue(struct coord_push *push, char *text)
{
  if (!text)
    return;
  pthread_mutex_lock(&push->lock);
  if (push->count == COORD_ALERT_QUEUE) {
    push->dropped++;
    free(text);
  } else {
    push->queue[(push->head + push->count++) % COORD_ALERT_QUEUE] = text;
    pthread_cond_signal(&push->wake);
  }
  pthread_mutex_unlock(&push->lock);
}

void coord_push_on_event(struct coord_push *push, const char *event,
                         void *line_json)
{
  json_t *line = line_json;
  const char *severity = NULL;
  const char *alert = s_alert_name(event, line, &severity);
  if (!push || !push->webhook_url[0] || !alert)
    return;
  char summary[512];
  s_summary(alert, line, summary, sizeof summary);
  s_enqueue(push, s_alert_text(push->coord, alert, severity, summary, line));
}

/* ---- sending (the push thread) --------------------------------------------
 */

static size_t s_discard(char *data, size_t size, size_t n, void *arg)
{
  (void)data;
  (void)arg;
  return size * n;
}

/* One HTTP request; 2xx is success. */
static int s_send(const char *method, const char *url, const char *type,
                  const char *body)
{
  CURL *curl = curl_easy_init();
  if (!curl)
    return 0;
  char header[128];
  snprintf(header, sizeof header, "Content-Type: %s", type);
  struct curl_slist *headers = curl_slist_append(NULL, header);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)COORD_PUSH_TIMEOUT_MS);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_discard);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (code != CURLE_OK || status < 200 || status > 299) {
    HERD_LOG(HERD_LOG_WARN, COORD_LOG, "%s %s: %s (HTTP %ld)", method, url,
             code != CURLE_OK ? curl_easy_strerror(code) : "refused", status);
    return 0;
  }
  return 1;
}

static int s_past_deadline(struct coord_push *push)
{
  pthread_mutex_lock(&push->lock);
  int past = push->stop && herd_mono_ms() > push->stop_deadline_ms;
  pthread_mutex_unlock(&push->lock);
  return past;
}

static void s_send_alert(struct coord_push *push, const char *text)
{
  for (int attempt = 0; attempt < COORD_ALERT_ATTEMPTS; attempt++) {
    if (attempt)
      usleep((useconds_t)(250000 << attempt)); /* 0.5 s, 1 s */
    if (s_past_deadline(push))
      return;
    if (s_send("POST", push->webhook_url, "application/json", text))
      return;
  }
  HERD_LOG(HERD_LOG_WARN, COORD_LOG, "alert not delivered after %d attempts",
           COORD_ALERT_ATTEMPTS);
}

static void s_push_metrics(struct coord_push *push)
{
  coord_snapshot_t *snap = NULL;
  if (coord_snapshot_take(push->coord, 0, &snap) != HERD_OK)
    return;
  char *text = coord_metrics_render(snap);
  coord_snapshot_free(&snap);
  if (text)
    s_send("PUT", push->gateway_url, "text/plain; version=0.0.4", text);
  free(text);
}

/* A stall alert when a running job has made no step progress for
 * stall_ms; re-armed by progress. */
static void s_check_stall(struct coord_push *push)
{
  herd_coord_t *coord = push->coord;
  pthread_mutex_lock(&coord->lock);
  int64_t idle_ms = herd_mono_ms() - coord->metrics->progress_ms;
  int running = coord->gen.state == COORD_JOB_RUNNING &&
                coord->metrics->steps_total > 0 && !coord->progress.done;
  int64_t step = coord->progress.step;
  pthread_mutex_unlock(&coord->lock);
  if (!running || idle_ms < push->stall_ms) {
    push->stalled = 0;
    return;
  }
  if (push->stalled)
    return;
  push->stalled = 1;
  char summary[160];
  snprintf(summary, sizeof summary, "no step progress for %.0f s (step %lld)",
           idle_ms / 1000.0, (long long)step);
  json_t *details = json_pack("{s:I, s:f}", "step", (json_int_t)step,
                              "idle_seconds", idle_ms / 1000.0);
  char *text = s_alert_text(coord, "stall", "warning", summary, details);
  json_decref(details);
  if (text)
    s_send_alert(push, text);
  free(text);
}

/* Waits for an alert, the next push, or stop; returns a dequeued alert or
 * NULL. *stopping: stop was asked and the queue is empty. */
static char *s_wait(struct coord_push *push, int64_t next_ms, int *stopping)
{
  pthread_mutex_lock(&push->lock);
  while (!push->stop && !push->count && herd_mono_ms() < next_ms) {
    int64_t wait_ms = next_ms - herd_mono_ms();
    wait_ms = wait_ms < 1 ? 1 : wait_ms > 200 ? 200 : wait_ms;
    struct timespec deadline = herd_deadline_in(CLOCK_REALTIME, wait_ms);
    pthread_cond_timedwait(&push->wake, &push->lock, &deadline);
  }
  char *text = NULL;
  if (push->count) {
    text = push->queue[push->head];
    push->head = (push->head + 1) % COORD_ALERT_QUEUE;
    push->count--;
  }
  *stopping = push->stop && !text;
  pthread_mutex_unlock(&push->lock);
  return text;
}

static void *s_thread_main(void *arg)
{
  struct coord_push *push = arg;
  int64_t next_push_ms = herd_mono_ms() + push->interval_ms;
  int64_t next_stall_ms = herd_mono_ms() + 1000;
  int stopping = 0;
  while (!stopping) {
    int64_t next_ms = push->gateway_url[0] && next_push_ms < next_stall_ms
                          ? next_push_ms
                          : next_stall_ms;
    char *alert = s_wait(push, next_ms, &stopping);
    if (alert && push->webhook_url[0])
      s_send_alert(push, alert);
    free(alert);
    int64_t now_ms = herd_mono_ms();
    if (push->gateway_url[0] && now_ms >= next_push_ms && !stopping) {
      s_push_metrics(push);
      next_push_ms = herd_mono_ms() + push->interval_ms;
    }
    if (push->stall_ms > 0 && push->webhook_url[0] && now_ms >= next_stall_ms) {
      s_check_stall(push);
      next_stall_ms = now_ms + 1000;
    }
  }
  if (push->gateway_url[0])
    s_push_metrics(push); /* the final figures */
  return NULL;
}

/* ---- lifecycle ------------------------------------------------------------
 */

/* Grouping key values: [A-Za-z0-9_.-], anything else becomes '_'. */
static void s_sanitize(char *out, size_t cap, const char *text)
{
  size_t n = 0;
  for (; text && *text && n + 1 < cap; text++)
    out[n++] =
        isalnum((unsigned char)*text) || strchr("_.-", *text) ? *text : '_';
  out[n] = '\0';
  if (!n)
    snprintf(out, cap, "herd");
}

static herd_result_t s_make_urls(struct coord_push *push,
                                 const herd_coord_config_t *config)
{
  const char *gateway = config->push_gateway_url;
  const char *hook = config->alert_webhook_url;
  if ((gateway && strlen(gateway) > COORD_PUSH_URL_MAX - 300) ||
      (hook && strlen(hook) >= COORD_PUSH_URL_MAX))
    return herd_error_set(HERD_EINVAL, "push or webhook URL too long");
  if (hook)
    snprintf(push->webhook_url, sizeof push->webhook_url, "%s", hook);
  if (gateway && gateway[0]) {
    char job[128], run[128];
    size_t len = strlen(gateway);
    while (len > 0 && gateway[len - 1] == '/')
      len--;
    s_sanitize(job, sizeof job, push->coord->job_id);
    s_sanitize(run, sizeof run, push->coord->run_id);
    snprintf(push->gateway_url, sizeof push->gateway_url,
             "%.*s/metrics/job/%s/run/%s", (int)len, gateway, job, run);
  }
  return HERD_OK;
}

herd_result_t coord_push_start(herd_coord_t *coord, struct coord_push **out)
{
  const herd_coord_config_t *config = &coord->config;
  *out = NULL;
  if (!(config->push_gateway_url && config->push_gateway_url[0]) &&
      !(config->alert_webhook_url && config->alert_webhook_url[0]))
    return HERD_OK;
  struct coord_push *push = calloc(1, sizeof *push);
  if (!push)
    return HERD_ENOMEM;
  push->coord = coord;
  push->interval_ms =
      config->push_interval_ms > 0 ? config->push_interval_ms : 10000;
  push->stall_ms =
      config->stall_alert_ms == 0 ? 120000 : config->stall_alert_ms;
  herd_result_t rc = s_make_urls(push, config);
  if (rc != HERD_OK) {
    free(push);
    return rc;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  pthread_mutex_init(&push->lock, NULL);
  pthread_cond_init(&push->wake, NULL);
  if (pthread_create(&push->thread, NULL, s_thread_main, push) != 0) {
    coord_push_stop(&push);
    return herd_error_set(HERD_ESYS, "cannot start the push thread");
  }
  push->started = 1;
  *out = push;
  return HERD_OK;
}

void coord_push_stop(struct coord_push **push_p)
{
  if (!push_p || !*push_p)
    return;
  struct coord_push *push = *push_p;
  *push_p = NULL;
  if (push->started) {
    pthread_mutex_lock(&push->lock);
    push->stop = 1;
    push->stop_deadline_ms = herd_mono_ms() + COORD_PUSH_DRAIN_MS;
    pthread_cond_signal(&push->wake);
    pthread_mutex_unlock(&push->lock);
    pthread_join(push->thread, NULL);
  }
  for (int i = 0; i < push->count; i++)
    free(push->queue[(push->head + i) % COORD_ALERT_QUEUE]);
  if (push->dropped)
    HERD_LOG(HERD_LOG_WARN, COORD_LOG, "%lld alerts dropped (queue full)",
             (long long)push->dropped);
  pthread_cond_destroy(&push->wake);
  pthread_mutex_destroy(&push->lock);
  curl_global_cleanup();
  free(push);
}
