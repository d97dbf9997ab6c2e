/* `herd status`: asks a running coordinator for membership, generation,
 * step and throughput (StatusRequest over ZeroMQ, with the job token) and
 * prints a table, or the coordinator's JSON with --json. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cmds.h"

typedef struct {
  const char *coord;
  const char *token, *token_file;
  const char *job_id;
  double timeout_s;
  int json;
} s_status_opts_t;

static const herd_opt_t s_table[] = {
    HERD_OPT_AS(COORD, s_status_opts_t, coord, NULL, 0, "tcp://127.0.0.1:5555"),
    HERD_OPT(TOKEN, s_status_opts_t, token),
    HERD_OPT(TOKEN_FILE, s_status_opts_t, token_file),
    HERD_OPT(JOB_ID, s_status_opts_t, job_id),
    HERD_OPT(STATUS_TIMEOUT, s_status_opts_t, timeout_s),
    HERD_OPT(STATUS_JSON, s_status_opts_t, json),
};

static const char s_usage[] =
    "usage: herd status [--coord ADDR] [--token-file FILE] [--json]\n\n"
    "Prints a running job's membership, generation, step and throughput.";

static const char *s_str(json_t *obj, const char *key)
{
  const char *value = json_string_value(json_object_get(obj, key));
  return value ? value : "";
}

static json_int_t s_int(json_t *obj, const char *key)
{
  return json_integer_value(json_object_get(obj, key));
}

static void s_print_table(json_t *s)
{
  printf("job %s  generation %lld  world %lld  members %lld (min %lld, max "
         "%lld)\n",
         s_str(s, "job_state"), (long long)s_int(s, "generation"),
         (long long)s_int(s, "world_size"), (long long)s_int(s, "member_count"),
         (long long)s_int(s, "min_workers"), (long long)s_int(s, "max_workers"));
  printf("step %lld  epoch %lld  loss %.4f  %.0f samples/s  failures %lld\n",
         (long long)s_int(s, "step"), (long long)s_int(s, "epoch"),
         json_number_value(json_object_get(s, "loss")),
         json_number_value(json_object_get(s, "samples_per_second")),
         (long long)s_int(s, "failures"));
  if (s_str(s, "failure")[0])
    printf("failure: %s\n", s_str(s, "failure"));
  printf("%6s %8s %-9s %10s %9s  %s\n", "RANK", "PID", "STATE", "STEP",
         "SEEN(ms)", "HOST");
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(s, "members"), i, m)
  {
    printf("%6lld %8lld %-9s %10lld %9lld  %s\n", (long long)s_int(m, "rank"),
           (long long)s_int(m, "pid"), s_str(m, "state"),
           (long long)s_int(m, "step"), (long long)s_int(m, "last_seen_ms_ago"),
           s_str(m, "host"));
  }
}

int herd_cmd_status(int argc, char **argv)
{
  s_status_opts_t opts = {0};
  int first = 0;
  int code = herd_cli_parse(s_usage, s_table, sizeof s_table / sizeof *s_table,
                            &opts, argc, argv, &first);
  if (code >= 0)
    return code;
  char token[HERD_TOKEN_MAX];
  if ((code = herd_cli_token("status", opts.token, opts.token_file, argc,
                             argv, token, sizeof token)) != 0)
    return code;
  if (!token[0]) {
    fprintf(stderr, "herd status: error: no job token: set HERD_TOKEN_FILE "
                    "(or --token-file) to a file holding it, or HERD_TOKEN\n");
    return HERD_EXIT_USAGE;
  }
  char *text = NULL;
  herd_result_t rc = herd_coord_query_status(
      opts.coord, token, opts.job_id, (int)(opts.timeout_s * 1000), &text);
  if (rc != HERD_OK)
    return herd_cli_fail("status", rc);
  json_error_t error;
  json_t *status = opts.json ? NULL : json_loads(text, 0, &error);
  if (status)
    s_print_table(status);
  else
    printf("%s\n", text);
  json_decref(status);
  free(text);
  return HERD_EXIT_OK;
}
