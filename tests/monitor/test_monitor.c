/* Unit tests of the monitoring pieces without a job: the timeline writer
 * (valid Chrome trace JSON, bounded buffer, rank file names), the metrics
 * and /status renderers fed with synthetic reports, --http address
 * parsing, and the HTTP server's routing and 405s on a detached
 * coordinator (loopback, port 0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "coord_internal.h"
#include "herd/herd.h"
#include "herd/coord.h"
#include "timeline.h"

/* ---- timeline ------------------------------------------------------------ */

static void test_timeline_rank_path(void **state)
{
  char out[256];
  herd_timeline_rank_path("/tmp/trace.json", 0, out, sizeof out);
  assert_string_equal(out, "/tmp/trace.json");
  herd_timeline_rank_path("/tmp/trace.json", 3, out, sizeof out);
  assert_string_equal(out, "/tmp/trace.rank3.json");
  herd_timeline_rank_path("/tmp/a.b/trace", 2, out, sizeof out);
  assert_string_equal(out, "/tmp/a.b/trace.rank2");
  herd_timeline_rank_path("trace", 1, out, sizeof out);
  assert_string_equal(out, "trace.rank1");
}

static void test_timeline_valid_json(void **state)
{
  char path[] = "/tmp/herd-tl-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  herd_timeline_t *t = NULL;
  assert_int_equal(herd_timeline_open(path, 0, &t), HERD_OK);
  /* Enough steps to pass the 64 KiB buffer several times. */
  for (int step = 1; step <= 2000; step++) {
    double t0 = step * 0.01;
    herd_timeline_step(t, step, t0, t0 + 0.001, t0 + 0.005, t0 + 0.008,
                       t0 + 0.009);
  }
  herd_timeline_phase(t, HERD_TIMELINE_CHECKPOINT, 2000, 21.0, 21.5);
  herd_timeline_close(&t);
  assert_null(t);
  herd_timeline_close(&t); /* NULL-safe */
  json_error_t error;
  json_t *events = json_load_file(path, 0, &error);
  assert_non_null(events);
  assert_true(json_is_array(events));
  size_t i, complete = 0;
  json_t *e;
  json_array_foreach(events, i, e)
  {
    const char *ph = json_string_value(json_object_get(e, "ph"));
    assert_non_null(ph);
    if (strcmp(ph, "X"))
      continue;
    complete++;
    assert_true(json_is_number(json_object_get(e, "ts")));
    assert_true(json_number_value(json_object_get(e, "dur")) >= 0);
    assert_int_equal(json_integer_value(json_object_get(e, "pid")), 0);
    assert_non_null(json_object_get(json_object_get(e, "args"), "step"));
  }
  assert_int_equal(complete, 2000 * 5 + 1);
  json_decref(events);
  unlink(path);
}

/* ---- metrics / status ------------------------------------------------------
 */

static herd_coord_t *s_detached(void)
{
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.token = "t";
  config.min_workers = 2;
  herd_coord_t *coord = NULL;
  assert_int_equal(coord_new_detached(&config, &coord), HERD_OK);
  return coord;
}

static void s_feed(herd_coord_t *coord)
{
  coord_member_t member;
  memset(&member, 0, sizeof member);
  member.state = COORD_MEMBER_ACTIVE;
  pthread_mutex_lock(&coord->lock);
  for (int step = 1; step <= 10; step++)
    for (int rank = 0; rank < 2; rank++) {
      Herd__StepReport r = HERD__STEP_REPORT__INIT;
      r.step = step;
      r.samples = 128;
      r.step_seconds = 0.02;
      r.compute_seconds = 0.012;
      r.comm_seconds = 0.006;
      r.data_seconds = 0.002;
      r.total_steps = 100;
      member.rank = rank;
      coord_metrics_on_step(coord, &member, &r);
      coord->progress.step = step; /* as coord_handlers.c does */
    }
  Herd__CkptCommitted c = HERD__CKPT_COMMITTED__INIT;
  c.step = 10;
  c.path = "/tmp/ckpt \"10\".h5";
  c.duration_seconds = 0.3;
  c.bytes = 4096;
  c.stall_seconds = 0.01;
  coord_metrics_on_checkpoint(coord, &c);
  pthread_mutex_unlock(&coord->lock);
}

static void test_metrics_text(void **state)
{
  herd_coord_t *coord = s_detached();
  s_feed(coord);
  coord_snapshot_t *snap = NULL;
  assert_int_equal(coord_snapshot_take(coord, 0, &snap), HERD_OK);
  char *text = coord_metrics_render(snap);
  assert_non_null(text);
  assert_non_null(strstr(text, "\nherd_steps_total 10\n"));
  assert_non_null(strstr(text, "\nherd_samples_total 1280\n"));
  assert_non_null(strstr(text, "herd_step_duration_seconds_bucket{le=\"0.025\"}"
                               " 10\n"));
  assert_non_null(strstr(text, "herd_step_duration_seconds_count 10\n"));
  assert_non_null(strstr(text, "herd_rank_step_phase_seconds_total{rank=\"1\","
                               "phase=\"comm\"}"));
  assert_non_null(strstr(text, "herd_checkpoint_written_bytes_total 4096\n"));
  assert_non_null(
      strstr(text, "herd_build_info{version=\"" HERD_VERSION "\"} 1\n"));
  /* Every sample line: name[{labels}] value. */
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == '#')
      continue;
    char *space = strrchr(line, ' ');
    assert_non_null(space);
    char *end = NULL;
    strtod(space + 1, &end);
    assert_true(*end == '\0');
    assert_true(!strncmp(line, "herd_", 5));
  }
  free(text);
  coord_snapshot_free(&snap);
  herd_coord_destroy(&coord);
}

static void test_status_json(void **state)
{
  herd_coord_t *coord = s_detached();
  s_feed(coord);
  coord_snapshot_t *snap = NULL;
  assert_int_equal(coord_snapshot_take(coord, 1, &snap), HERD_OK);
  char *text = coord_status_render(snap);
  assert_non_null(text);
  json_error_t error;
  json_t *j = json_loads(text, 0, &error);
  assert_non_null(j);
  assert_int_equal(json_integer_value(json_object_get(j, "steps_total")), 10);
  assert_int_equal(json_integer_value(json_object_get(j, "total_steps")), 100);
  assert_true(json_number_value(json_object_get(j, "eta_seconds")) > 1.7);
  json_t *ckpt = json_object_get(j, "last_checkpoint");
  assert_string_equal(json_string_value(json_object_get(ckpt, "path")),
                      "/tmp/ckpt \"10\".h5");
  assert_true(json_is_array(json_object_get(j, "members")));
  json_decref(j);
  free(text);
  coord_snapshot_free(&snap);
  herd_coord_destroy(&coord);
}

/* ---- HTTP ------------------------------------------------------------------
 */

static void test_parse_address(void **state)
{
  struct sockaddr_storage addr;
  size_t len = 0;
  assert_int_equal(
      coord_http_parse_address("127.0.0.1:0", &addr, sizeof addr, &len),
      HERD_OK);
  assert_int_equal(addr.ss_family, AF_INET);
  assert_int_equal(
      coord_http_parse_address("[::1]:8080", &addr, sizeof addr, &len),
      HERD_OK);
  assert_int_equal(addr.ss_family, AF_INET6);
  assert_int_equal(
      coord_http_parse_address("localhost:9", &addr, sizeof addr, &len),
      HERD_OK);
  const char *bad[] = {"",
                       "127.0.0.1",
                       ":80",
                       "127.0.0.1:",
                       "1.2.3.4:70000",
                       "example.com:80",
                       "127.0.0.1:8x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(coord_http_parse_address(bad[i], &addr, sizeof addr, &len),
                     HERD_EINVAL);
}

static size_t s_sink(char *data, size_t size, size_t n, void *arg)
{
  (void)data;
  (void)arg;
  return size * n;
}

static long s_request(const char *url, const char *method)
{
  CURL *curl = curl_easy_init();
  long status = 0;
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (!strcmp(method, "HEAD"))
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!strcmp(method, "POST"))
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "x=1");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_sink);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
  if (curl_easy_perform(curl) == CURLE_OK)
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(curl);
  return status;
}

static void test_http_routes(void **state)
{
  herd_coord_t *coord = s_detached();
  s_feed(coord);
  struct coord_http *http = NULL;
  assert_int_equal(coord_http_start(coord, "127.0.0.1:0", &http), HERD_OK);
  const char *base = coord_http_url(http);
  assert_true(!strncmp(base, "http://127.0.0.1:", 17));
  char url[400];
  const char *ok[] = {"", "metrics", "status", "healthz", "timeline",
                      "timeline?after=3"};
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    snprintf(url, sizeof url, "%s%s", base, ok[i]);
    assert_int_equal(s_request(url, "GET"), 200);
    assert_int_equal(s_request(url, "HEAD"), 200);
  }
  snprintf(url, sizeof url, "%smetrics", base);
  assert_int_equal(s_request(url, "POST"), 405);
  assert_int_equal(s_request(url, "PUT"), 405);
  assert_int_equal(s_request(url, "DELETE"), 405);
  snprintf(url, sizeof url, "%stimeline?after=x", base);
  assert_int_equal(s_request(url, "GET"), 400);
  snprintf(url, sizeof url, "%smissing", base);
  assert_int_equal(s_request(url, "GET"), 404);
  coord_http_stop(&http);
  assert_null(http);
  herd_coord_destroy(&coord);
}

/* ---- the run page's timeline and the report ------------------------------ */

static json_t *s_event(double ts, const char *event)
{
  return json_pack("{s:f, s:s}", "ts", ts, "event", event);
}

/* 8 hours of steps at 10/s stay within the step cap, thinned evenly from
 * first to last; every failure marker is kept; /timeline?after=SEQ gives
 * only newer entries, in order, as a JSON array. */
static void test_run_timeline_bounded(void **state)
{
  coord_timeline_t *tl = NULL;
  assert_int_equal(coord_timeline_new(&tl), HERD_OK);
  const int steps = 300000;
  for (int i = 0; i < steps; i++) {
    json_t *e = s_event(1000 + i * 0.1, "step");
    json_object_set_new(e, "step", json_integer(i));
    coord_timeline_add(tl, e);
    json_decref(e);
    if (i % 10000 == 0) {
      e = s_event(1000 + i * 0.1, "member_failed");
      json_object_set_new(e, "reason", json_string("connection lost"));
      coord_timeline_add(tl, e);
      json_decref(e);
    }
  }
  assert_true(coord_timeline_kept(tl) <= 1500 + 30);
  assert_true(coord_timeline_bytes(tl) < ((size_t)1 << 20));
  char *all = coord_timeline_render(tl, 0);
  json_error_t error;
  json_t *list = json_loads(all, 0, &error);
  assert_true(json_is_array(list));
  size_t n = json_array_size(list), fails = 0, step_entries = 0;
  double first_ts = -1, last_ts = 0, max_gap = 0;
  int64_t prev_seq = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(list, i);
    int64_t seq = json_integer_value(json_object_get(e, "seq"));
    assert_true(seq > prev_seq);
    prev_seq = seq;
    const char *kind = json_string_value(json_object_get(e, "event"));
    double ts = json_real_value(json_object_get(e, "ts"));
    if (!strcmp(kind, "member_failed")) {
      fails++;
      continue;
    }
    step_entries++;
    if (first_ts < 0)
      first_ts = ts;
    else if (ts - last_ts > max_gap)
      max_gap = ts - last_ts;
    last_ts = ts;
  }
  assert_int_equal(fails, 30);
  assert_true(step_entries >= 700);
  assert_true(first_ts == 1000);           /* the start stays */
  assert_true(last_ts > 1000 + steps * 0.1 - 300); /* the end is recent */
  /* evenly thinned: no gap much above the mean */
  assert_true(max_gap < 3 * (last_ts - first_ts) / (double)step_entries);
  int64_t after = json_integer_value(
      json_object_get(json_array_get(list, n - 3), "seq"));
  char *newer = coord_timeline_render(tl, after);
  json_t *tail = json_loads(newer, 0, &error);
  assert_int_equal(json_array_size(tail), 2);
  json_decref(tail);
  json_decref(list);
  free(newer);
  free(all);
  coord_timeline_free(&tl);
  assert_null(tl);
}

static void test_event_text(void **state)
{
  char text[256];
  json_t *e = json_loads("{\"ts\":1,\"event\":\"epoch_end\",\"epoch\":3,"
                         "\"test_accuracy\":0.87009999999999998}",
                         0, NULL);
  coord_event_text(e, text, sizeof text);
  assert_string_equal(text, "epoch 3  test accuracy 0.8701");
  json_decref(e);
  e = json_loads("{\"ts\":1,\"event\":\"member_failed\",\"rank\":2,"
                 "\"host\":\"h1\",\"signal\":\"heartbeat_silence\","
                 "\"reason\":\"no heartbeat for 2020 ms\"}",
                 0, NULL);
  coord_event_text(e, text, sizeof text);
  assert_string_equal(text,
                      "rank 2 on h1: no heartbeat for 2020 ms (heartbeat_silence)");
  json_decref(e);
  e = json_loads("{\"ts\":1,\"event\":\"member_failed\"}", 0, NULL);
  coord_event_text(e, text, sizeof text); /* an older line: no fields */
  assert_string_equal(text, "rank ? on ?: ? (?)");
  json_decref(e);
}

/* herd_report_write: damaged and overlong lines are counted, not fatal; a
 * string holding </script> cannot end the data element early. */
static void test_report_damaged_events(void **state)
{
  char dir[] = "/tmp/herd-report-test-XXXXXX", path[256], out[256];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/events.jsonl", dir);
  snprintf(out, sizeof out, "%s/r.html", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f, "{\"ts\":1,\"event\":\"generation\",\"generation\":1}\n");
  fprintf(f, "{\"ts\":2,\"event\":\"step\",\"step\":1,\"generation\":1,"
             "\"samples_per_second\":100}\n");
  fprintf(f, "{\"ts\":3,\"event\":\"member_failed\",\"rank\":1,"
             "\"reason\":\"</script><script>alert(1)</script>\"}\n");
  fprintf(f, "{\"ts\":4,\"event\":\"generation\",\"generation\":2}\n");
  fprintf(f, "{\"ts\":5,\"event\":\"step\",\"step\":2,\"generation\":2}\n");
  fprintf(f, "garbage\n[]\n{\"ts\":\"x\",\"event\":\"step\"}\n");
  for (int i = 0; i < (2 << 20); i++)
    fputc('x', f);
  fprintf(f, "\n{\"ts\":6,\"event\":\"done\",\"ok\":true}\n{\"ts\":");
  fclose(f);
  herd_report_stats_t stats;
  assert_int_equal(herd_report_write(dir, out, &stats), HERD_OK);
  assert_int_equal(stats.bad_lines, 5);
  assert_int_equal(stats.failures, 1);
  f = fopen(out, "r");
  assert_non_null(f);
  static char html[4 << 20];
  size_t len = fread(html, 1, sizeof html - 1, f);
  html[len] = '\0';
  fclose(f);
  const char *data = strstr(html, "id=\"herd-data\">");
  assert_non_null(data);
  const char *end = strstr(data, "</script>");
  assert_non_null(end);
  assert_null(memmem(data, (size_t)(end - data), "alert(1)</", 10));
  assert_non_null(memmem(data, (size_t)(end - data), "<\\/script>", 10));
  assert_non_null(strstr(html, "\"recovery_s\":2"));
  assert_non_null(strstr(html, "\"outcome\":\"finished\""));
  remove(path);
  remove(out);
  rmdir(dir);
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timeline_rank_path),
      cmocka_unit_test(test_timeline_valid_json),
      cmocka_unit_test(test_metrics_text),
      cmocka_unit_test(test_status_json),
      cmocka_unit_test(test_parse_address),
      cmocka_unit_test(test_http_routes),
      cmocka_unit_test(test_run_timeline_bounded),
      cmocka_unit_test(test_event_text),
      cmocka_unit_test(test_report_damaged_events),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return failed;
}
