/* The run directory's record: events.jsonl (append-only, one JSON object per
 * line, flushed per line so `tail -f` and a crashed coordinator both see
 * every event) and summary.json (written once at the end, temp + rename so
 * readers never see half a file).
 *
 * Everything written here may come from the wire, so strings are made valid
 * UTF-8 (jansson refuses anything else) and non-finite doubles become null
 * (JSON has no NaN). Callers hold coord->lock.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "herd/fs.h"
#include "coord_internal.h"
#include "herd/herd.h"

#define COORD_MAX_CHECKPOINTS 100000

void *coord_json_string(const char *text)
{
  json_t *value = json_string(text ? text : "");
  if (value)
    return value;
  /* Invalid UTF-8 from the wire: keep the ASCII, mark the rest. */
  char *copy = strdup(text);
  if (!copy)
    return json_null();
  for (char *p = copy; *p; p++)
    if ((unsigned char)*p >= 0x80)
      *p = '?';
  value = json_string(copy);
  free(copy);
  return value ? value : json_null();
}

void *coord_json_real(double value)
{
  return isfinite(value) ? json_real(value) : json_null();
}

herd_result_t coord_events_open(coord_events_t *events, const char *run_dir)
{
  herd_result_t rc = HERD_OK;
  char path[4096];
  memset(events, 0, sizeof *events);
  if (!run_dir)
    return HERD_OK;
  HERD_TRY(herd_mkdir_p(run_dir, 0777));
  events->run_dir = strdup(run_dir);
  if (!events->run_dir) {
    rc = HERD_ENOMEM;
    goto out;
  }
  snprintf(path, sizeof path, "%s/events.jsonl", run_dir);
  events->file = fopen(path, "a");
  if (!events->file)
    rc = herd_error_set(HERD_EIO, "cannot open %s: %s", path, strerror(errno));
out:
  if (rc != HERD_OK)
    coord_events_close(events);
  return rc;
}

void coord_events_close(coord_events_t *events)
{
  if (events->file)
    fclose(events->file);
  for (size_t i = 0; i < events->n_checkpoints; i++)
    free(events->checkpoints[i]);
  free(events->checkpoints);
  free(events->run_dir);
  memset(events, 0, sizeof *events);
}

static double s_unix_seconds(void)
{
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

void coord_events_write(coord_events_t *events, const char *event, void *fields)
{
  json_t *extra = fields;
  json_t *line = NULL;
  char *text = NULL;
  if (!events->file && !events->on_event)
    goto out;
  line = json_pack("{s:f, s:s}", "ts", s_unix_seconds(), "event", event);
  if (!line)
    goto out;
  /* ts and event are the contract; extra fields never overwrite them. */
  if (json_is_object(extra))
    json_object_update_missing(line, extra);
  if (events->on_event) /* monitoring: recent events, alerts */
    events->on_event(events->on_event_arg, event, line);
  if (!events->file)
    goto out;
  text = json_dumps(line, JSON_COMPACT); /* 17 digits: exact, read back */
  if (!text)
    goto out;
  if (fprintf(events->file, "%s\n", text) < 0 || fflush(events->file) != 0)
    HERD_LOG(HERD_LOG_WARN, COORD_LOG, "cannot write events.jsonl: %s",
             strerror(errno));
out:
  free(text);
  json_decref(line);
  json_decref(extra);
}

herd_result_t coord_events_add_checkpoint(coord_events_t *events,
                                          const char *path)
{
  if (events->n_checkpoints == events->cap_checkpoints) {
    size_t cap = events->cap_checkpoints ? events->cap_checkpoints * 2 : 16;
    if (cap > COORD_MAX_CHECKPOINTS)
      return HERD_ETOOBIG;
    char **grown = realloc(events->checkpoints, cap * sizeof *grown);
    if (!grown)
      return HERD_ENOMEM;
    events->checkpoints = grown;
    events->cap_checkpoints = cap;
  }
  char *copy = strdup(path);
  if (!copy)
    return HERD_ENOMEM;
  events->checkpoints[events->n_checkpoints++] = copy;
  return HERD_OK;
}

static json_t *s_summary_json(herd_coord_t *coord, int job_ok,
                              const char *reason)
{
  const coord_progress_t *p = &coord->progress;
  herd_done_report_t d = {p->step,
                          p->epoch,
                          p->test_accuracy,
                          p->samples_per_second,
                          coord->gen.world_size,
                          -1,
                          ""};
  if (coord->progress.have_done)
    d = coord->progress.report;
  json_t *paths = json_array();
  for (size_t i = 0; paths && i < coord->events.n_checkpoints; i++)
    json_array_append_new(paths,
                          coord_json_string(coord->events.checkpoints[i]));
  json_t *summary = json_pack(
      "{s:I, s:I, s:o, s:o, s:i, s:o, s:o, s:I, s:I, s:b}", "final_step",
      (json_int_t)d.final_step, "epochs", (json_int_t)d.epochs, "test_accuracy",
      d.test_accuracy < 0 ? json_null() : coord_json_real(d.test_accuracy),
      "samples_per_second", coord_json_real(d.samples_per_second), "world_size",
      d.world_size, "resumed_from_step",
      d.resumed_from_step < 0 ? json_null() : json_integer(d.resumed_from_step),
      "checkpoints", paths ? paths : json_array(), "generations",
      (json_int_t)coord->gen.number, "failures",
      (json_int_t)coord->members.failures, "ok", job_ok);
  if (summary) {
    json_object_set_new(summary, "job_id", coord_json_string(coord->job_id));
    json_object_set_new(summary, "param_sha256",
                        d.param_sha256[0] ? coord_json_string(d.param_sha256)
                                          : json_null());
    json_object_set_new(summary, "reason",
                        reason ? coord_json_string(reason) : json_null());
    const coord_progress_t *p = &coord->progress;
    json_object_set_new(summary, "model_flops_per_second",
                        p->model_flops_per_second > 0
                            ? json_real(p->model_flops_per_second)
                            : json_null());
    json_object_set_new(summary, "peak_flops_per_second",
                        p->peak_flops_per_second > 0
                            ? json_real(p->peak_flops_per_second)
                            : json_null());
    json_object_set_new(summary, "mfu", p->mfu_n ? json_real(p->mfu_sum /
                                                             (double)p->mfu_n)
                                                 : json_null());
  }
  return summary;
}

herd_result_t coord_events_write_summary(herd_coord_t *coord, int job_ok,
                                         const char *reason)
{
  herd_result_t rc = HERD_OK;
  char path[4096];
  char *text = NULL;
  json_t *summary = NULL;
  if (!coord->events.run_dir)
    return HERD_OK;
  snprintf(path, sizeof path, "%s/summary.json", coord->events.run_dir);
  summary = s_summary_json(coord, job_ok, reason);
  text = summary ? json_dumps(summary, JSON_INDENT(2)) : NULL;
  if (!text) {
    rc = herd_error_set(HERD_ENOMEM, "cannot build summary.json");
    goto out;
  }
  /* One line of JSON text and its newline, replaced atomically: a reader
   * (or a crash) sees the old summary or the new one. */
  size_t len = strlen(text);
  char *line = realloc(text, len + 2);
  if (!line) {
    rc = herd_error_set(HERD_ENOMEM, "cannot build summary.json");
    goto out;
  }
  text = line;
  memcpy(text + len, "\n", 2);
  HERD_TRY(herd_write_file_atomic(path, text, len + 1));
out:
  free(text);
  json_decref(summary);
  return rc;
}

/* ---- recovery after a coordinator restart --------------------------------- */

#define COORD_RECOVER_TAIL_BYTES ((long)4 << 20)

static void s_recover_line(coord_events_t *events, const char *line,
                           int64_t *generation, int64_t *step)
{
  json_error_t error;
  json_t *obj = json_loads(line, 0, &error);
  const char *name = json_string_value(json_object_get(obj, "event"));
  if (!name) {
    json_decref(obj);
    return;
  }
  json_t *g = json_object_get(obj, "generation");
  if (json_is_integer(g) && json_integer_value(g) > *generation)
    *generation = json_integer_value(g);
  json_t *s = json_object_get(obj, "step");
  if (!strcmp(name, "step") && json_is_integer(s) &&
      json_integer_value(s) > *step)
    *step = json_integer_value(s);
  const char *path = json_string_value(json_object_get(obj, "path"));
  if (!strcmp(name, "checkpoint_committed") && path &&
      coord_events_add_checkpoint(events, path) != HERD_OK)
    HERD_LOG(HERD_LOG_WARN, COORD_LOG, "checkpoint list full");
  json_decref(obj);
}

void coord_events_recover(coord_events_t *events, int64_t *generation_out,
                          int64_t *step_out)
{
  char path[4200], line[8192];
  *generation_out = 0;
  *step_out = 0;
  if (!events->run_dir)
    return;
  snprintf(path, sizeof path, "%s/events.jsonl", events->run_dir);
  FILE *file = fopen(path, "r");
  if (!file)
    return;
  /* Bounded: only the tail; the first (partial) line there is skipped. */
  if (fseek(file, 0, SEEK_END) == 0 && ftell(file) > COORD_RECOVER_TAIL_BYTES) {
    fseek(file, -COORD_RECOVER_TAIL_BYTES, SEEK_END);
    if (!fgets(line, sizeof line, file))
      line[0] = '\0';
  } else {
    fseek(file, 0, SEEK_SET);
  }
  while (fgets(line, sizeof line, file))
    if (strstr(line, "\"generation\"") || strstr(line, "checkpoint_committed"))
      s_recover_line(events, line, generation_out, step_out);
  fclose(file);
  if (*generation_out > 0)
    HERD_LOG(HERD_LOG_INFO, COORD_LOG,
             "run dir: last generation %lld, step %lld, %zu checkpoints",
             (long long)*generation_out, (long long)*step_out,
             events->n_checkpoints);
}
