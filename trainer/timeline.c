/* Chrome trace of herd-train's step phases (see timeline.h).
 *
 * The file is a JSON array written front to back: "[", the metadata
 * events, one complete ("X") event per phase, and "]" at close. Events are
 * formatted into a fixed buffer that is written out whenever the next event
 * might not fit, so a step costs a few snprintf calls and, every few hundred
 * steps, one fwrite. Timestamps come in as CLOCK_MONOTONIC seconds (what
 * the trainer measures with) and go out as microseconds since the Unix
 * epoch, using the offset between the two clocks taken at open.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "herd/herd.h"
#include "timeline.h"

#define TIMELINE_BUFFER 65536
#define TIMELINE_EVENT_MAX 320

struct herd_timeline {
  FILE *file;
  int rank;
  int failed;            /* a write failed: stop recording */
  int events;            /* written so far (for the separating commas) */
  double epoch_offset_s; /* realtime - monotonic */
  size_t len;
  char buffer[TIMELINE_BUFFER];
};

static const char *const s_names[HERD_TIMELINE_PHASE_COUNT] = {
    "step", "data", "compute", "comm", "optimizer", "checkpoint",
    "allreduce"};

static double s_clock(clockid_t id)
{
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void herd_timeline_rank_path(const char *path, int rank, char *out, size_t cap)
{
  if (rank <= 0) {
    snprintf(out, cap, "%s", path);
    return;
  }
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(path, '.');
  if (!dot || (slash && dot < slash) || dot == path || dot[-1] == '/')
    snprintf(out, cap, "%s.rank%d", path, rank);
  else
    snprintf(out, cap, "%.*s.rank%d%s", (int)(dot - path), path, rank, dot);
}

static void s_flush(herd_timeline_t *t)
{
  if (t->failed || !t->len)
    return;
  if (fwrite(t->buffer, 1, t->len, t->file) != t->len) {
    HERD_LOG(HERD_LOG_WARN, "train",
             "timeline: write failed (%s): no more "
             "events recorded",
             strerror(errno));
    t->failed = 1;
  }
  t->len = 0;
}

/* Appends one event object (the text between the braces). */
static void s_event(herd_timeline_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void s_event(herd_timeline_t *t, const char *fmt, ...)
{
  if (t->failed)
    return;
  if (TIMELINE_BUFFER - t->len < TIMELINE_EVENT_MAX)
    s_flush(t);
  char *at = t->buffer + t->len;
  size_t room = TIMELINE_BUFFER - t->len;
  int n = snprintf(at, room, "%s{", t->events ? ",\n" : "\n");
  va_list args;
  va_start(args, fmt);
  n += vsnprintf(at + n, room - (size_t)n, fmt, args);
  va_end(args);
  n += snprintf(at + n, room - (size_t)n, "}");
  if (n < 0 || (size_t)n >= room || n >= TIMELINE_EVENT_MAX)
    return; /* cannot happen with our fixed formats: drop, keep valid */
  t->len += (size_t)n;
  t->events++;
}

static void s_metadata(herd_timeline_t *t)
{
  s_event(t,
          "\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
          "\"args\":{\"name\":\"rank %d\"}",
          t->rank, t->rank);
  s_event(t,
          "\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,"
          "\"args\":{\"sort_index\":%d}",
          t->rank, t->rank);
  for (int lane = 0; lane < HERD_TIMELINE_PHASE_COUNT; lane++)
    s_event(t,
            "\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,"
            "\"args\":{\"name\":\"%s\"}",
            t->rank, lane, s_names[lane]);
}

herd_result_t herd_timeline_open(const char *path, int rank,
                                 herd_timeline_t **out)
{
  char file_path[4200];
  *out = NULL;
  if (!path || !path[0])
    return herd_error_set(HERD_EINVAL, "--timeline needs a file name");
  herd_timeline_rank_path(path, rank, file_path, sizeof file_path);
  herd_timeline_t *t = calloc(1, sizeof *t);
  if (!t)
    return HERD_ENOMEM;
  t->file = fopen(file_path, "w");
  if (!t->file) {
    free(t);
    return herd_error_set(HERD_EIO, "--timeline: cannot create %s: %s",
                          file_path, strerror(errno));
  }
  t->rank = rank;
  t->epoch_offset_s = s_clock(CLOCK_REALTIME) - s_clock(CLOCK_MONOTONIC);
  t->buffer[t->len++] = '[';
  s_metadata(t);
  *out = t;
  return HERD_OK;
}

void herd_timeline_phase(herd_timeline_t *t, herd_timeline_phase_t phase,
                         int64_t step, double start_s, double end_s)
{
  if (!t || (unsigned)phase >= HERD_TIMELINE_PHASE_COUNT)
    return;
  double ts_us = (start_s + t->epoch_offset_s) * 1e6;
  double dur_us = end_s > start_s ? (end_s - start_s) * 1e6 : 0;
  s_event(t,
          "\"name\":\"%s\",\"cat\":\"step\",\"ph\":\"X\",\"ts\":%.3f,"
          "\"dur\":%.3f,\"pid\":%d,\"tid\":%d,\"args\":{\"step\":%lld}",
          s_names[phase], ts_us, dur_us, t->rank, (int)phase, (long long)step);
}

void herd_timeline_step(herd_timeline_t *t, int64_t step, double t0, double t1,
                        double t2, double t3, double t4)
{
  if (!t)
    return;
  herd_timeline_phase(t, HERD_TIMELINE_STEP, step, t0, t4);
  herd_timeline_phase(t, HERD_TIMELINE_DATA, step, t0, t1);
  herd_timeline_phase(t, HERD_TIMELINE_COMPUTE, step, t1, t2);
  herd_timeline_phase(t, HERD_TIMELINE_COMM, step, t2, t3);
  herd_timeline_phase(t, HERD_TIMELINE_OPTIMIZER, step, t3, t4);
}

void herd_timeline_close(herd_timeline_t **timeline_p)
{
  if (!timeline_p || !*timeline_p)
    return;
  herd_timeline_t *t = *timeline_p;
  *timeline_p = NULL;
  s_flush(t);
  if (!t->failed)
    fputs("\n]\n", t->file);
  if (fclose(t->file) != 0 && !t->failed)
    HERD_LOG(HERD_LOG_WARN, "train", "timeline: close failed: %s",
             strerror(errno));
  free(t);
}
