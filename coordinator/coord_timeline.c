/* The run's timeline: what the run page and `herd report` draw, kept
 * bounded for a run of any length.
 *
 * Every event line goes in. Each kind has a cap; when a kind is full, every
 * other entry is dropped (the newest is kept) and the kind's minimum spacing
 * becomes twice the mean spacing of what is left, so a 24-hour run keeps an
 * evenly thinned record of the whole run rather than only its last hour.
 * Markers (failures, generations, joins) have a large cap and no spacing:
 * they are thinned only past thousands of them.
 *
 * Each entry is kept as its compact JSON text with two fields added: `seq`
 * (a counter, so the page can ask for what is new: /timeline?after=SEQ) and
 * `text` (the event in a few words, coord_event_text, which herd top and the
 * page show). Rendering concatenates the texts, newest kinds merged by seq.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coord_internal.h"
#include "herd/herd.h"

typedef struct {
  int64_t seq;
  double ts;
  char *json;
  size_t len;
} s_entry_t;

typedef struct {
  const char *name; /* NULL: every event not named by another kind */
  int cap;
  int spaced;       /* thinned by time as well as by count */
  s_entry_t *v;
  int n;
  double min_gap;   /* seconds between kept entries, grows as it thins */
} s_kind_t;

struct coord_timeline {
  s_kind_t kinds[5];
  int n_kinds;
  int64_t next_seq;
  size_t bytes; /* sum of the kept texts */
};

/* Caps: the page and the report carry at most about
 * 1500 x ~300 B (steps) + 400 x ~3 KB (ranks, 64 ranks) + 400 x ~150 B
 * (checkpoints) + 2 x 4000 x ~250 B = ~3.6 MB for any run. */
static const struct {
  const char *name;
  int cap, spaced;
} s_kind_caps[] = {
    {"step", 1500, 1},
    {"ranks", 400, 1},
    {"checkpoint_committed", 400, 1},
    {"epoch_end", 4000, 0},
    {NULL, 4000, 0},
};

herd_result_t coord_timeline_new(coord_timeline_t **out)
{
  coord_timeline_t *tl = calloc(1, sizeof *tl);
  if (!tl)
    return HERD_ENOMEM;
  tl->n_kinds = (int)(sizeof s_kind_caps / sizeof s_kind_caps[0]);
  for (int i = 0; i < tl->n_kinds; i++) {
    s_kind_t *k = &tl->kinds[i];
    k->name = s_kind_caps[i].name;
    k->cap = s_kind_caps[i].cap;
    k->spaced = s_kind_caps[i].spaced;
    k->v = calloc((size_t)k->cap, sizeof *k->v);
    if (!k->v) {
      coord_timeline_free(&tl);
      return HERD_ENOMEM;
    }
  }
  tl->next_seq = 1;
  *out = tl;
  return HERD_OK;
}

void coord_timeline_free(coord_timeline_t **tl_p)
{
  coord_timeline_t *tl = tl_p ? *tl_p : NULL;
  if (!tl)
    return;
  for (int i = 0; i < tl->n_kinds; i++) {
    for (int j = 0; j < tl->kinds[i].n; j++)
      free(tl->kinds[i].v[j].json);
    free(tl->kinds[i].v);
  }
  free(tl);
  *tl_p = NULL;
}

static s_kind_t *s_kind_of(coord_timeline_t *tl, const char *event)
{
  for (int i = 0; i < tl->n_kinds - 1; i++)
    if (!strcmp(tl->kinds[i].name, event))
      return &tl->kinds[i];
  return &tl->kinds[tl->n_kinds - 1];
}

/* Drops every other entry, keeping the first and the newest. */
static void s_thin(coord_timeline_t *tl, s_kind_t *k)
{
  int kept = 0;
  for (int j = 0; j < k->n; j++) {
    if (j % 2 == 0 || j == k->n - 1) {
      k->v[kept++] = k->v[j];
    } else {
      tl->bytes -= k->v[j].len;
      free(k->v[j].json);
    }
  }
  k->n = kept;
  if (k->spaced && kept > 1)
    k->min_gap = 2 * (k->v[kept - 1].ts - k->v[0].ts) / (kept - 1);
}

/* ---- the event in a few words ------------------------------------------ */

static const char *s_str(const json_t *line, const char *key)
{
  const char *s = json_string_value(json_object_get(line, key));
  return s ? s : "?";
}

/* Appends "key value" for present fields only; numbers to `digits`
 * significant digits (no 0.87009999999999998). */
static size_t s_add(char *out, size_t cap, size_t at, const char *label,
                    const json_t *v, int digits)
{
  if (at >= cap || !v || json_is_null(v))
    return at;
  const char *sep = at ? "  " : "";
  int n = 0;
  if (json_is_integer(v))
    n = snprintf(out + at, cap - at, "%s%s %lld", sep, label,
                 (long long)json_integer_value(v));
  else if (json_is_real(v))
    n = snprintf(out + at, cap - at, "%s%s %.*g", sep, label, digits,
                 json_real_value(v));
  else if (json_is_string(v))
    n = snprintf(out + at, cap - at, "%s%s %s", sep, label,
                 json_string_value(v));
  else if (json_is_boolean(v))
    n = snprintf(out + at, cap - at, "%s%s %s", sep, label,
                 json_is_true(v) ? "yes" : "no");
  return n > 0 ? at + (size_t)n : at;
}

void coord_event_text(const void *line_json, char *out, size_t cap)
{
  const json_t *line = line_json;
  const char *event = s_str(line, "event");
  size_t at = 0;
  out[0] = '\0';
#define F(label, key, digits)                                                  \
  at = s_add(out, cap, at, label, json_object_get(line, key), digits)
  if (!strcmp(event, "member_failed")) {
    const json_t *r = json_object_get(line, "rank");
    char rank[24] = "?";
    if (json_is_integer(r))
      snprintf(rank, sizeof rank, "%lld", (long long)json_integer_value(r));
    snprintf(out, cap, "rank %s on %s: %s (%s)", rank, s_str(line, "host"),
             s_str(line, "reason"), s_str(line, "signal"));
  } else if (!strcmp(event, "step")) {
    F("step", "step", 0);
    F("loss", "loss", 4);
    F("samples/s", "samples_per_second", 4);
    F("world", "world_size", 0);
  } else if (!strcmp(event, "epoch_end")) {
    F("epoch", "epoch", 0);
    F("test accuracy", "test_accuracy", 4);
    F("test loss", "test_loss", 4);
  } else if (!strcmp(event, "checkpoint_committed")) {
    F("step", "step", 0);
    F("path", "path", 0);
  } else if (!strcmp(event, "generation")) {
    F("generation", "generation", 0);
    F("world", "world_size", 0);
    if (json_is_true(json_object_get(line, "adopted")))
      at = s_add(out, cap, at, "adopted", json_true(), 0);
  } else if (!strcmp(event, "ranks")) {
    F("step", "step", 0);
    F("ranks", "n_ranks", 0);
  } else {
    /* Any other kind, present or future: its fields, numbers rounded. */
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)line, key, v)
    {
      if (strcmp(key, "ts") && strcmp(key, "event") && strcmp(key, "seq") &&
          strcmp(key, "text") && !json_is_array(v) && !json_is_object(v))
        at = s_add(out, cap, at, key, v, 4);
    }
  }
#undef F
}

/* ---- adding and rendering ------------------------------------------------ */

int coord_timeline_wants(coord_timeline_t *tl, const char *event, double ts)
{
  const s_kind_t *k = s_kind_of(tl, event);
  return !(k->spaced && k->n > 0 && ts - k->v[k->n - 1].ts < k->min_gap);
}

void coord_timeline_add(coord_timeline_t *tl, void *line_json)
{
  json_t *line = line_json;
  const char *event = json_string_value(json_object_get(line, "event"));
  const json_t *ts_v = json_object_get(line, "ts");
  if (!tl || !event || !json_is_number(ts_v))
    return;
  double ts = json_number_value(ts_v);
  if (!coord_timeline_wants(tl, event, ts))
    return;
  s_kind_t *k = s_kind_of(tl, event);
  if (k->n == k->cap)
    s_thin(tl, k);
  char text[512];
  coord_event_text(line, text, sizeof text);
  json_t *copy = json_copy(line);
  if (!copy)
    return;
  json_object_set_new(copy, "seq", json_integer(tl->next_seq));
  json_object_set_new(copy, "text", coord_json_string(text));
  char *json = json_dumps(copy, JSON_COMPACT | JSON_REAL_PRECISION(15));
  json_decref(copy);
  if (!json)
    return;
  s_entry_t *e = &k->v[k->n++];
  e->seq = tl->next_seq++;
  e->ts = ts;
  e->json = json;
  e->len = strlen(json);
  tl->bytes += e->len;
}

int64_t coord_timeline_last_seq(const coord_timeline_t *tl)
{
  return tl ? tl->next_seq - 1 : 0;
}

char *coord_timeline_render(const coord_timeline_t *tl, int64_t after)
{
  size_t cap = 3, at = 0;
  for (int i = 0; tl && i < tl->n_kinds; i++)
    for (int j = 0; j < tl->kinds[i].n; j++)
      cap += tl->kinds[i].v[j].len + 2;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  out[at++] = '[';
  /* Merge the kinds by seq: each kind's entries are in seq order. */
  int pos[8] = {0};
  for (;;) {
    int best = -1;
    for (int i = 0; tl && i < tl->n_kinds; i++) {
      const s_kind_t *k = &tl->kinds[i];
      while (pos[i] < k->n && k->v[pos[i]].seq <= after)
        pos[i]++;
      if (pos[i] < k->n &&
          (best < 0 || k->v[pos[i]].seq < tl->kinds[best].v[pos[best]].seq))
        best = i;
    }
    if (best < 0)
      break;
    const s_entry_t *e = &tl->kinds[best].v[pos[best]++];
    if (at > 1)
      out[at++] = ',';
    memcpy(out + at, e->json, e->len);
    at += e->len;
  }
  out[at++] = ']';
  out[at] = '\0';
  return out;
}

size_t coord_timeline_kept(const coord_timeline_t *tl)
{
  size_t n = 0;
  for (int i = 0; tl && i < tl->n_kinds; i++)
    n += (size_t)tl->kinds[i].n;
  return n;
}

size_t coord_timeline_bytes(const coord_timeline_t *tl)
{
  return tl ? tl->bytes : 0;
}
