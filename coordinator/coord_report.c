/* `herd report`: one self-contained HTML file of a finished (or failed, or
 * interrupted) run, drawn from RUN_DIR/events.jsonl by the same page and the
 * same timeline the coordinator serves live, plus a summary computed while
 * reading: outcome, steps, accuracy, throughput, every failure with what
 * detected it and how long recovery took, checkpoints, generations and the
 * coordinator's settings.
 *
 * The file is read once, line by line, in bounded memory: a line longer
 * than HERD_REPORT_LINE_MAX is skipped as unreadable, and only what the
 * timeline keeps is parsed in full (a step line it would drop is read by
 * its few numbers). Lines from earlier versions with fields missing are
 * shown as missing; nothing in the file can crash the reader.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coord_internal.h"
#include "herd/fs.h"
#include "herd/herd.h"

#define HERD_REPORT_LINE_MAX ((size_t)1 << 20)
#define HERD_REPORT_FAILURES_MAX 10000

typedef struct {
  double ts;
  int64_t generation; /* current when it failed */
  int64_t last_step;  /* newest step committed before it */
  json_t *row;        /* the failure's summary row (owned) */
  int recovered;
} s_failure_t;

typedef struct {
  coord_timeline_t *timeline;
  herd_report_stats_t *stats;
  double first_ts, last_ts;
  int64_t final_step, generation, generations, epochs, checkpoints;
  double sps_sum, lost_s, mfu_sum, peak;
  int64_t sps_n, mfu_n;
  double test_accuracy; /* NAN: none */
  char last_checkpoint[1024];
  const char *outcome;  /* static */
  char reason[512];
  json_t *settings;
  s_failure_t *failures;
  size_t n_failures, cap_failures;
} s_reader_t;

/* ---- numbers from a line without parsing it (our own step lines) ------- */

static int s_quick_number(const char *line, const char *key, double *out)
{
  const char *at = strstr(line, key);
  if (!at)
    return 0;
  char *end = NULL;
  errno = 0;
  double v = strtod(at + strlen(key), &end);
  if (end == at + strlen(key) || errno)
    return 0;
  *out = v;
  return 1;
}

/* A step line as coord_events_write writes it: {"ts":N,"event":"step",...}. */
static int s_is_step_line(const char *line, double *ts)
{
  static const char head[] = "{\"ts\":";
  if (strncmp(line, head, sizeof head - 1))
    return 0;
  char *end = NULL;
  double v = strtod(line + sizeof head - 1, &end);
  if (end == line + sizeof head - 1 || strncmp(end, ",\"event\":\"step\"", 15))
    return 0;
  *ts = v;
  return 1;
}

/* ---- the summary ------------------------------------------------------- */

static void s_on_step(s_reader_t *r, double ts, double step, double gen,
                      double sps, double mfu)
{
  if (isfinite(mfu) && mfu >= 0) {
    r->mfu_sum += mfu;
    r->mfu_n++;
  }
  if (isfinite(sps) && sps >= 0) {
    r->sps_sum += sps;
    r->sps_n++;
  }
  if (isfinite(gen) && gen > 0)
    r->generation = (int64_t)gen;
  for (size_t i = 0; i < r->n_failures; i++) {
    s_failure_t *f = &r->failures[i];
    if (f->recovered || r->generation <= f->generation)
      continue;
    f->recovered = 1;
    r->lost_s += ts - f->ts;
    json_object_set_new(f->row, "recovery_s", json_real(ts - f->ts));
    if (isfinite(step) && f->last_step >= 0) {
      int64_t redone = f->last_step + 1 - (int64_t)step;
      json_object_set_new(f->row, "steps_redone",
                          json_integer(redone > 0 ? redone : 0));
    }
  }
  if (isfinite(step) && step > r->final_step)
    r->final_step = (int64_t)step;
}

static void s_on_failure(s_reader_t *r, json_t *line, double ts)
{
  if (r->n_failures == HERD_REPORT_FAILURES_MAX)
    return;
  if (r->n_failures == r->cap_failures) {
    size_t cap = r->cap_failures ? r->cap_failures * 2 : 16;
    s_failure_t *grown = realloc(r->failures, cap * sizeof *grown);
    if (!grown)
      return;
    r->failures = grown;
    r->cap_failures = cap;
  }
  json_t *row = json_object();
  if (!row)
    return;
  json_object_set_new(row, "ts", json_real(ts));
  static const char *const keep[] = {"rank", "host", "signal", "reason",
                                     "pid"};
  for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
    json_t *v = json_object_get(line, keep[i]);
    if (v && !json_is_object(v) && !json_is_array(v))
      json_object_set(row, keep[i], v);
  }
  r->failures[r->n_failures++] = (s_failure_t){
      ts, r->generation, r->final_step > 0 ? r->final_step : -1, row, 0};
}

static void s_on_line(s_reader_t *r, json_t *line, double ts)
{
  const char *event = json_string_value(json_object_get(line, "event"));
  if (!event)
    return;
  json_t *v;
  if (!strcmp(event, "step")) {
    double step = NAN, gen = NAN, sps = NAN, mfu = NAN;
    if ((v = json_object_get(line, "mfu")) && json_is_number(v))
      mfu = json_number_value(v);
    if ((v = json_object_get(line, "model_flops_per_second")) &&
        json_is_number(v) && isfinite(mfu) && mfu > 0)
      r->peak = json_number_value(v) / mfu;
    if ((v = json_object_get(line, "step")) && json_is_number(v))
      step = json_number_value(v);
    if ((v = json_object_get(line, "generation")) && json_is_number(v))
      gen = json_number_value(v);
    if ((v = json_object_get(line, "samples_per_second")) && json_is_number(v))
      sps = json_number_value(v);
    s_on_step(r, ts, step, gen, sps, mfu);
  } else if (!strcmp(event, "epoch_end")) {
    if ((v = json_object_get(line, "test_accuracy")) && json_is_number(v))
      r->test_accuracy = json_number_value(v);
    if ((v = json_object_get(line, "epoch")) && json_is_integer(v) &&
        json_integer_value(v) + 1 > r->epochs)
      r->epochs = json_integer_value(v) + 1;
  } else if (!strcmp(event, "generation")) {
    /* Its number, or (an event without one) one more than the last. */
    v = json_object_get(line, "generation");
    int64_t g = json_is_integer(v) ? json_integer_value(v) : r->generations + 1;
    if (g > r->generations)
      r->generations = g;
  } else if (!strcmp(event, "member_failed")) {
    s_on_failure(r, line, ts);
  } else if (!strcmp(event, "checkpoint_committed")) {
    r->checkpoints++;
    const char *path = json_string_value(json_object_get(line, "path"));
    if (path)
      snprintf(r->last_checkpoint, sizeof r->last_checkpoint, "%s", path);
  } else if (!strcmp(event, "coordinator_started")) {
    json_t *s = json_deep_copy(line);
    if (s) {
      json_object_del(s, "ts");
      json_object_del(s, "event");
      json_decref(r->settings);
      r->settings = s;
    }
  } else if (!strcmp(event, "done") || !strcmp(event, "job_failed")) {
    int ok = !strcmp(event, "done") &&
             !json_is_false(json_object_get(line, "ok"));
    r->outcome = ok ? "finished" : "failed";
    const char *why = json_string_value(json_object_get(line, "reason"));
    snprintf(r->reason, sizeof r->reason, "%s", why ? why : "");
  }
}

static void s_read_line(s_reader_t *r, const char *text)
{
  r->stats->lines++;
  double ts = NAN;
  if (s_is_step_line(text, &ts) && !coord_timeline_wants(r->timeline, "step",
                                                         ts)) {
    double step = NAN, gen = NAN, sps = NAN, mfu = NAN;
    s_quick_number(text, "\"step\":", &step);
    s_quick_number(text, "\"generation\":", &gen);
    s_quick_number(text, "\"samples_per_second\":", &sps);
    s_quick_number(text, "\"mfu\":", &mfu);
    s_on_step(r, ts, step, gen, sps, mfu);
  } else {
    json_error_t error;
    json_t *line = json_loads(text, 0, &error);
    const json_t *ts_v = json_object_get(line, "ts");
    if (!json_is_object(line) || !json_is_number(ts_v) ||
        !json_is_string(json_object_get(line, "event"))) {
      r->stats->bad_lines++;
      json_decref(line);
      return;
    }
    ts = json_number_value(ts_v);
    s_on_line(r, line, ts);
    coord_timeline_add(r->timeline, line);
    json_decref(line);
  }
  if (!(r->first_ts > 0))
    r->first_ts = ts;
  if (ts > r->last_ts)
    r->last_ts = ts;
}

/* Reads every line; a line over the limit is skipped to its end. */
static herd_result_t s_read_file(s_reader_t *r, FILE *file)
{
  char *buf = malloc(HERD_REPORT_LINE_MAX + 1);
  if (!buf)
    return HERD_ENOMEM;
  int skipping = 0;
  while (fgets(buf, (int)HERD_REPORT_LINE_MAX + 1, file)) {
    size_t len = strlen(buf);
    int complete = len > 0 && buf[len - 1] == '\n';
    if (skipping || (!complete && !feof(file))) {
      if (!skipping)
        r->stats->bad_lines++, r->stats->lines++;
      skipping = !complete;
      continue;
    }
    if (len > 1)
      s_read_line(r, buf);
  }
  free(buf);
  return ferror(file) ? herd_error_set(HERD_EIO, "reading events: %s",
                                       strerror(errno))
                      : HERD_OK;
}

/* summary.json's numbers fill what the events lack (an older herd). */
static void s_merge_summary_file(s_reader_t *r, const char *run_dir)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/summary.json", run_dir);
  json_error_t error;
  json_t *s = json_load_file(path, 0, &error);
  if (!json_is_object(s)) {
    json_decref(s);
    return;
  }
  json_t *v;
  if (isnan(r->test_accuracy) &&
      (v = json_object_get(s, "test_accuracy")) && json_is_number(v))
    r->test_accuracy = json_number_value(v);
  if (r->final_step <= 0 && (v = json_object_get(s, "final_step")) &&
      json_is_integer(v))
    r->final_step = json_integer_value(v);
  if (!strcmp(r->outcome, "interrupted") && (v = json_object_get(s, "ok")) &&
      json_is_boolean(v))
    r->outcome = json_is_true(v) ? "finished" : "failed";
  json_decref(s);
}

static json_t *s_summary(s_reader_t *r, const char *run_dir,
                         const char *events_path)
{
  json_t *failures = json_array();
  for (size_t i = 0; failures && i < r->n_failures; i++)
    json_array_append(failures, r->failures[i].row);
  double duration = r->last_ts - r->first_ts;
  json_t *s = json_object();
  if (!s)
    return NULL;
  json_object_set_new(s, "outcome", json_string(r->outcome));
  json_object_set_new(s, "reason", r->reason[0] ? coord_json_string(r->reason)
                                                : json_null());
  json_object_set_new(s, "run_dir", coord_json_string(run_dir));
  json_object_set_new(s, "events_file", coord_json_string(events_path));
  json_object_set_new(s, "job_id",
                      r->settings ? json_incref(json_object_get(r->settings,
                                                                "job_id"))
                                  : json_null());
  json_object_set_new(s, "started_ts", r->first_ts > 0
                                           ? json_real(r->first_ts)
                                           : json_null());
  json_object_set_new(s, "duration_s", coord_json_real(duration));
  json_object_set_new(s, "final_step", r->final_step > 0
                                           ? json_integer(r->final_step)
                                           : json_null());
  json_object_set_new(s, "epochs", r->epochs > 0 ? json_integer(r->epochs)
                                                 : json_null());
  json_object_set_new(s, "final_test_accuracy",
                      coord_json_real(r->test_accuracy));
  json_object_set_new(s, "mean_samples_per_second",
                      r->sps_n ? json_real(r->sps_sum / (double)r->sps_n)
                               : json_null());
  json_object_set_new(s, "mfu", r->mfu_n ? json_real(r->mfu_sum /
                                                    (double)r->mfu_n)
                                        : json_null());
  json_object_set_new(s, "peak_flops_per_second",
                      r->peak > 0 ? json_real(r->peak) : json_null());
  json_object_set_new(s, "generations", json_integer(r->generations));
  json_object_set_new(s, "checkpoints", json_integer(r->checkpoints));
  json_object_set_new(s, "last_checkpoint",
                      r->last_checkpoint[0]
                          ? coord_json_string(r->last_checkpoint)
                          : json_null());
  json_object_set_new(s, "effective_share",
                      duration > 0 ? json_real(1 - r->lost_s / duration)
                                   : json_null());
  json_object_set_new(s, "failures", failures ? failures : json_array());
  json_object_set_new(s, "settings",
                      r->settings ? json_incref(r->settings) : json_object());
  json_object_set_new(s, "lines", json_integer(r->stats->lines));
  json_object_set_new(s, "bad_lines", json_integer(r->stats->bad_lines));
  return s;
}

/* {"timeline":[...],"summary":{...}} with every "</" written "<\/", so the
 * text can sit inside a <script> element. */
static char *s_page_data(const char *timeline, const char *summary)
{
  size_t n = strlen(timeline) + strlen(summary);
  char *out = malloc(2 * n + 64), *at = out;
  if (!out)
    return NULL;
  at += sprintf(at, "{\"timeline\":");
  for (int part = 0; part < 2; part++) {
    const char *p = part ? summary : timeline;
    if (part)
      at += sprintf(at, ",\"summary\":");
    for (; *p; p++) {
      if (p[0] == '<' && p[1] == '/') {
        memcpy(at, "<\\/", 3);
        at += 3;
        p++;
      } else {
        *at++ = *p;
      }
    }
  }
  memcpy(at, "}", 2);
  return out;
}

herd_result_t herd_report_write(const char *run_dir, const char *out_path,
                                herd_report_stats_t *stats_out)
{
  herd_result_t rc = HERD_OK;
  herd_report_stats_t stats = {0};
  s_reader_t r = {.stats = &stats, .test_accuracy = NAN,
                  .outcome = "interrupted"};
  char events_path[4096], default_out[4096];
  char *timeline = NULL, *summary_text = NULL, *data = NULL, *html = NULL;
  json_t *summary = NULL;
  FILE *file = NULL;
  if (!run_dir || !*run_dir)
    return herd_error_set(HERD_EINVAL, "no run directory");
  snprintf(events_path, sizeof events_path, "%s/events.jsonl", run_dir);
  if (!out_path) {
    snprintf(default_out, sizeof default_out, "%s/report.html", run_dir);
    out_path = default_out;
  }
  file = fopen(events_path, "r");
  if (!file)
    return herd_error_set(HERD_EIO, "cannot open %s: %s", events_path,
                          strerror(errno));
  HERD_TRY(coord_timeline_new(&r.timeline));
  HERD_TRY(s_read_file(&r, file));
  s_merge_summary_file(&r, run_dir);
  summary = s_summary(&r, run_dir, events_path);
  timeline = coord_timeline_render(r.timeline, 0);
  summary_text = summary ? json_dumps(summary, JSON_COMPACT |
                                                   JSON_REAL_PRECISION(15))
                         : NULL;
  data = timeline && summary_text ? s_page_data(timeline, summary_text)
                                  : NULL;
  html = data ? coord_page_render(data) : NULL;
  if (!html) {
    rc = herd_error_set(HERD_ENOMEM, "no memory for the report");
    goto out;
  }
  stats.kept_events = (int64_t)coord_timeline_kept(r.timeline);
  stats.bytes = (int64_t)strlen(html);
  stats.failures = (int64_t)r.n_failures;
  HERD_TRY(herd_write_file_atomic(out_path, html, strlen(html)));
out:
  if (file)
    fclose(file);
  for (size_t i = 0; i < r.n_failures; i++)
    json_decref(r.failures[i].row);
  free(r.failures);
  json_decref(r.settings);
  json_decref(summary);
  coord_timeline_free(&r.timeline);
  free(timeline);
  free(summary_text);
  free(data);
  free(html);
  if (stats_out)
    *stats_out = stats;
  return rc;
}
