/* Wire protocol tests: every message survives an encode/decode round trip,
 * and the coordinator's decoder rejects hostile input (random bytes,
 * truncation, oversize frames, wrong version/job/token) without crashing.
 * The last test points a raw DEALER full of garbage at a live coordinator
 * and checks it counts the garbage and still admits a real worker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "coord_internal.h"
#include "herd/herd.h"

static const coord_codec_limits_t s_limits = {"job-a", "tok3n", 65536};

static void s_env_init(Herd__Envelope *env)
{
  herd__envelope__init(env);
  env->version = HERD_PROTOCOL_VERSION;
  env->job_id = "job-a";
}

/* Packs env, decodes it through the coordinator codec, expects `want`. */
static herd_result_t s_roundtrip(const Herd__Envelope *env,
                                 herd_wire_msg_t *msg)
{
  size_t size = herd__envelope__get_packed_size(env);
  uint8_t *buf = malloc(size + 1);
  assert_non_null(buf);
  herd__envelope__pack(env, buf);
  char reason[160];
  herd_result_t rc =
      coord_codec_decode(&s_limits, buf, size, msg, reason, sizeof reason);
  free(buf);
  return rc;
}

/* ---- round trips ----------------------------------------------------------
 */

static void test_roundtrip_join_roster_refused(void **state)
{
  Herd__Envelope env;
  herd_wire_msg_t msg;
  Herd__Join join = HERD__JOIN__INIT;
  s_env_init(&env);
  join.token = "tok3n";
  join.launcher_rank = -1;
  join.launcher_world_size = 4;
  join.pid = 4242;
  join.host = "node-7";
  env.body_case = HERD__ENVELOPE__BODY_JOIN;
  env.join = &join;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_int_equal(msg.env->version, HERD_PROTOCOL_VERSION);
  assert_string_equal(msg.env->job_id, "job-a");
  assert_int_equal(msg.env->body_case, HERD__ENVELOPE__BODY_JOIN);
  assert_string_equal(msg.env->join->token, "tok3n");
  assert_int_equal(msg.env->join->launcher_rank, -1);
  assert_int_equal(msg.env->join->launcher_world_size, 4);
  assert_int_equal(msg.env->join->pid, 4242);
  assert_string_equal(msg.env->join->host, "node-7");
  herd_wire_msg_clear(&msg);

  Herd__Member m0 = HERD__MEMBER__INIT, m1 = HERD__MEMBER__INIT;
  Herd__Member *members[2] = {&m0, &m1};
  m0.rank = 0, m0.pid = 10, m0.host = "a";
  m1.rank = 1, m1.pid = 11, m1.host = "b";
  Herd__Roster roster = HERD__ROSTER__INIT;
  roster.generation = 3;
  roster.rank = 1;
  roster.world_size = 2;
  roster.n_members = 2;
  roster.members = members;
  roster.state_source_rank = 0;
  roster.resume_step = -1;
  roster.heartbeat_interval_ms = 100;
  env.body_case = HERD__ENVELOPE__BODY_ROSTER;
  env.roster = &roster;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  const Herd__Roster *r = msg.env->roster;
  assert_int_equal(r->generation, 3);
  assert_int_equal(r->rank, 1);
  assert_int_equal(r->world_size, 2);
  assert_int_equal(r->n_members, 2);
  assert_int_equal(r->members[1]->pid, 11);
  assert_string_equal(r->members[1]->host, "b");
  assert_int_equal(r->resume_step, -1);
  assert_int_equal(r->heartbeat_interval_ms, 100);
  herd_wire_msg_clear(&msg);

  Herd__Refused refused = HERD__REFUSED__INIT;
  refused.reason = "wrong job token";
  env.body_case = HERD__ENVELOPE__BODY_REFUSED;
  env.refused = &refused;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_string_equal(msg.env->refused->reason, "wrong job token");
  herd_wire_msg_clear(&msg);
}

static void test_roundtrip_reports(void **state)
{
  Herd__Envelope env;
  herd_wire_msg_t msg;
  s_env_init(&env);
  Herd__StepReport step = HERD__STEP_REPORT__INIT;
  step.step = 17, step.epoch = 2, step.generation = 1, step.world_size = 4;
  step.loss = 0.25, step.samples = 256, step.samples_per_second = 1e5;
  step.step_seconds = 0.5, step.compute_seconds = 0.3;
  step.comm_seconds = 0.15, step.data_seconds = 0.05;
  step.sample_begin = 4096, step.sample_end = 4352;
  env.body_case = HERD__ENVELOPE__BODY_STEP_REPORT;
  env.step_report = &step;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  const Herd__StepReport *s = msg.env->step_report;
  assert_int_equal(s->step, 17);
  assert_int_equal(s->epoch, 2);
  assert_int_equal(s->world_size, 4);
  assert_true(s->loss == 0.25 && s->samples_per_second == 1e5);
  assert_true(s->comm_seconds == 0.15 && s->data_seconds == 0.05);
  assert_int_equal(s->sample_begin, 4096);
  assert_int_equal(s->sample_end, 4352);
  herd_wire_msg_clear(&msg);

  Herd__EpochEnd epoch = HERD__EPOCH_END__INIT;
  epoch.epoch = 3, epoch.test_accuracy = 0.883, epoch.test_loss = 0.33;
  env.body_case = HERD__ENVELOPE__BODY_EPOCH_END;
  env.epoch_end = &epoch;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_int_equal(msg.env->epoch_end->epoch, 3);
  assert_true(msg.env->epoch_end->test_accuracy == 0.883);
  herd_wire_msg_clear(&msg);

  Herd__CkptCommitted ckpt = HERD__CKPT_COMMITTED__INIT;
  ckpt.step = 100, ckpt.path = "runs/x/ckpt/step-100.h5";
  env.body_case = HERD__ENVELOPE__BODY_CKPT_COMMITTED;
  env.ckpt_committed = &ckpt;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_string_equal(msg.env->ckpt_committed->path, "runs/x/ckpt/step-100.h5");
  herd_wire_msg_clear(&msg);

  Herd__Done done = HERD__DONE__INIT;
  done.final_step = 1000, done.epochs = 5, done.test_accuracy = 0.88;
  done.samples_per_second = 5e4, done.world_size = 4;
  done.resumed_from_step = -1;
  env.body_case = HERD__ENVELOPE__BODY_DONE;
  env.done = &done;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_int_equal(msg.env->done->final_step, 1000);
  assert_int_equal(msg.env->done->resumed_from_step, -1);
  assert_int_equal(msg.env->done->world_size, 4);
  herd_wire_msg_clear(&msg);
}

static void test_roundtrip_control_and_kv(void **state)
{
  Herd__Envelope env;
  herd_wire_msg_t msg;
  s_env_init(&env);
  Herd__Heartbeat heartbeat = HERD__HEARTBEAT__INIT;
  heartbeat.step = -1;
  env.body_case = HERD__ENVELOPE__BODY_HEARTBEAT;
  env.heartbeat = &heartbeat;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_int_equal(msg.env->heartbeat->step, -1);
  herd_wire_msg_clear(&msg);

  Herd__Leave leave = HERD__LEAVE__INIT;
  leave.reason = "finished";
  env.body_case = HERD__ENVELOPE__BODY_LEAVE;
  env.leave = &leave;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_string_equal(msg.env->leave->reason, "finished");
  herd_wire_msg_clear(&msg);

  Herd__PeerFailed peer = HERD__PEER_FAILED__INIT;
  peer.generation = 2, peer.rank = 3, peer.reason = "connection reset";
  env.body_case = HERD__ENVELOPE__BODY_PEER_FAILED;
  env.peer_failed = &peer;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_int_equal(msg.env->peer_failed->rank, 3);
  herd_wire_msg_clear(&msg);

  Herd__Abort abort_msg = HERD__ABORT__INIT;
  abort_msg.generation = 2, abort_msg.reason = "peer lost";
  env.body_case = HERD__ENVELOPE__BODY_ABORT;
  env.abort = &abort_msg;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_string_equal(msg.env->abort->reason, "peer lost");
  herd_wire_msg_clear(&msg);

  uint8_t id[4] = {0, 1, 2, 255};
  Herd__KvSet set = HERD__KV_SET__INIT;
  set.key = "g2/nccl_id", set.value.data = id, set.value.len = sizeof id;
  env.body_case = HERD__ENVELOPE__BODY_KV_SET;
  env.kv_set = &set;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_int_equal(msg.env->kv_set->value.len, 4);
  assert_memory_equal(msg.env->kv_set->value.data, id, 4);
  herd_wire_msg_clear(&msg);

  Herd__KvGet get = HERD__KV_GET__INIT;
  get.key = "g2/nccl_id", get.wait_ms = 500;
  env.body_case = HERD__ENVELOPE__BODY_KV_GET;
  env.kv_get = &get;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_int_equal(msg.env->kv_get->wait_ms, 500);
  herd_wire_msg_clear(&msg);

  Herd__KvValue value = HERD__KV_VALUE__INIT;
  value.key = "g2/nccl_id", value.found = 1;
  value.value.data = id, value.value.len = sizeof id;
  env.body_case = HERD__ENVELOPE__BODY_KV_VALUE;
  env.kv_value = &value;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_true(msg.env->kv_value->found);
  herd_wire_msg_clear(&msg);
}

/* A big honest roster must fit the decoder's allocation budget. */
static void test_large_roster_within_budget(void **state)
{
  enum { N = 1000 };
  Herd__Member *items = calloc(N, sizeof *items);
  Herd__Member **ptrs = calloc(N, sizeof *ptrs);
  assert_non_null(items);
  assert_non_null(ptrs);
  for (int i = 0; i < N; i++) {
    herd__member__init(&items[i]);
    items[i].rank = i, items[i].pid = 1000 + i, items[i].host = "gpu-node";
    ptrs[i] = &items[i];
  }
  Herd__Envelope env;
  Herd__Roster roster = HERD__ROSTER__INIT;
  s_env_init(&env);
  roster.n_members = N, roster.members = ptrs, roster.world_size = N;
  env.body_case = HERD__ENVELOPE__BODY_ROSTER;
  env.roster = &roster;
  herd_wire_msg_t msg;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  assert_int_equal(msg.env->roster->n_members, N);
  herd_wire_msg_clear(&msg);
  free(items);
  free(ptrs);
}

/* ---- hostile input ---------------------------------------------------------
 */

static void test_random_bytes_rejected(void **state)
{
  uint8_t buf[512];
  char reason[160];
  srand(12345);
  for (int iter = 0; iter < 20000; iter++) {
    size_t size = (size_t)(rand() % (int)sizeof buf);
    for (size_t i = 0; i < size; i++)
      buf[i] = (uint8_t)rand();
    herd_wire_msg_t msg;
    herd_result_t rc =
        coord_codec_decode(&s_limits, buf, size, &msg, reason, sizeof reason);
    /* Random bytes never carry the right version AND job id. */
    assert_int_not_equal(rc, HERD_OK);
    herd_wire_msg_clear(&msg);
  }
}

static void test_truncated_rejected(void **state)
{
  Herd__Envelope env;
  Herd__Join join = HERD__JOIN__INIT;
  s_env_init(&env);
  join.token = "tok3n", join.pid = 7, join.host = "h", join.launcher_rank = 2;
  env.body_case = HERD__ENVELOPE__BODY_JOIN;
  env.join = &join;
  uint8_t buf[256];
  size_t size = herd__envelope__pack(&env, buf);
  char reason[160];
  for (size_t cut = 0; cut < size; cut++) {
    herd_wire_msg_t msg;
    herd_result_t rc =
        coord_codec_decode(&s_limits, buf, cut, &msg, reason, sizeof reason);
    assert_true(rc == HERD_EFORMAT || rc == HERD_EPROTO);
    herd_wire_msg_clear(&msg);
  }
  herd_wire_msg_t msg;
  assert_int_equal(
      coord_codec_decode(&s_limits, buf, size, &msg, reason, sizeof reason),
      HERD_OK);
  herd_wire_msg_clear(&msg);
}

static void test_oversize_rejected_before_decoding(void **state)
{
  size_t size = s_limits.max_message_bytes + 1;
  uint8_t *buf = calloc(1, size);
  assert_non_null(buf);
  herd_wire_msg_t msg;
  char reason[160];
  assert_int_equal(
      coord_codec_decode(&s_limits, buf, size, &msg, reason, sizeof reason),
      HERD_ETOOBIG);
  assert_null(msg.env);
  free(buf);

  /* A well-formed message that is simply too big is rejected too. */
  char *host = malloc(size);
  assert_non_null(host);
  memset(host, 'x', size - 1);
  host[size - 1] = '\0';
  Herd__Envelope env;
  Herd__Join join = HERD__JOIN__INIT;
  s_env_init(&env);
  join.token = "tok3n", join.host = host;
  env.body_case = HERD__ENVELOPE__BODY_JOIN;
  env.join = &join;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_ETOOBIG);
  free(host);
}

static void test_wrong_version_job_token(void **state)
{
  Herd__Envelope env;
  Herd__Join join = HERD__JOIN__INIT;
  herd_wire_msg_t msg;
  s_env_init(&env);
  join.token = "tok3n";
  env.body_case = HERD__ENVELOPE__BODY_JOIN;
  env.join = &join;

  env.version = HERD_PROTOCOL_VERSION + 1;
  assert_int_equal(s_roundtrip(&env, &msg), HERD_EPROTO);
  herd_wire_msg_clear(&msg);
  env.version = HERD_PROTOCOL_VERSION;

  env.job_id = "job-b";
  assert_int_equal(s_roundtrip(&env, &msg), HERD_EPROTO);
  herd_wire_msg_clear(&msg);
  env.job_id = "job-a";

  const char *bad[] = {"", "tok3", "tok3n!", "TOK3N", "tok3m"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    join.token = (char *)bad[i];
    assert_int_equal(s_roundtrip(&env, &msg), HERD_EAUTH);
    herd_wire_msg_clear(&msg);
  }
  join.token = "tok3n";
  assert_int_equal(s_roundtrip(&env, &msg), HERD_OK);
  herd_wire_msg_clear(&msg);

  /* An envelope without a body is malformed. */
  s_env_init(&env);
  assert_int_equal(s_roundtrip(&env, &msg), HERD_EFORMAT);
}

static void test_token_compare(void **state)
{
  assert_true(coord_codec_token_equal("abc", "abc"));
  assert_false(coord_codec_token_equal("ab", "abc"));
  assert_false(coord_codec_token_equal("abcd", "abc"));
  assert_false(coord_codec_token_equal("", "abc"));
  assert_false(coord_codec_token_equal("abd", "abc"));
}

static void test_state_tables(void **state)
{
  coord_member_state_t m;
  assert_true(
      coord_member_transition(COORD_MEMBER_JOINING, COORD_MEMBER_EV_ADMIT, &m));
  assert_int_equal(m, COORD_MEMBER_ACTIVE);
  assert_true(
      coord_member_transition(COORD_MEMBER_ACTIVE, COORD_MEMBER_EV_FAIL, &m));
  assert_int_equal(m, COORD_MEMBER_FAILED);
  assert_false(
      coord_member_transition(COORD_MEMBER_FAILED, COORD_MEMBER_EV_LEAVE, &m));
  coord_job_state_t j;
  assert_true(coord_job_transition(COORD_JOB_FORMING, COORD_JOB_EV_QUORUM, &j));
  assert_int_equal(j, COORD_JOB_LAST_CALL);
  assert_true(
      coord_job_transition(COORD_JOB_LAST_CALL, COORD_JOB_EV_REFORMED, &j));
  assert_int_equal(j, COORD_JOB_RUNNING);
  assert_true(coord_job_transition(COORD_JOB_RUNNING, COORD_JOB_EV_ADMIT, &j));
  assert_int_equal(j, COORD_JOB_RECONFIGURING);
  assert_true(
      coord_job_transition(COORD_JOB_RECONFIGURING, COORD_JOB_EV_BELOW_MIN, &j));
  assert_int_equal(j, COORD_JOB_FORMING);
  assert_true(coord_job_transition(COORD_JOB_FORMING, COORD_JOB_EV_ADOPTED, &j));
  assert_int_equal(j, COORD_JOB_RUNNING);
  assert_true(
      coord_member_transition(COORD_MEMBER_JOINING, COORD_MEMBER_EV_DEFER, &m));
  assert_int_equal(m, COORD_MEMBER_WAITING);
  assert_true(
      coord_member_transition(COORD_MEMBER_WAITING, COORD_MEMBER_EV_ADMIT, &m));
  assert_int_equal(m, COORD_MEMBER_ACTIVE);
  assert_false(
      coord_member_transition(COORD_MEMBER_ACTIVE, COORD_MEMBER_EV_DEFER, &m));
  assert_true(
      coord_job_transition(COORD_JOB_RUNNING, COORD_JOB_EV_MEMBER_LOST, &j));
  assert_int_equal(j, COORD_JOB_RECONFIGURING);
  assert_false(
      coord_job_transition(COORD_JOB_RUNNING, COORD_JOB_EV_JOIN_TIMEOUT, &j));
}

/* ---- a live coordinator fed garbage
 * ------------------------------------------ */

static int64_t s_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_send_garbage(void *dealer)
{
  uint8_t junk[300];
  srand(99);
  for (int i = 0; i < 50; i++) {
    size_t size = (size_t)(rand() % (int)sizeof junk) + 1;
    for (size_t k = 0; k < size; k++)
      junk[k] = (uint8_t)rand();
    assert_true(zmq_send(dealer, junk, size, 0) >= 0);
  }
  /* multipart (a worker always sends one frame) */
  assert_true(zmq_send(dealer, "a", 1, ZMQ_SNDMORE) >= 0);
  assert_true(zmq_send(dealer, "b", 1, 0) >= 0);
  /* oversize, below libzmq's hard cap so the coordinator sees it */
  size_t big = 70000;
  uint8_t *buf = calloc(1, big);
  assert_non_null(buf);
  assert_true(zmq_send(dealer, buf, big, 0) >= 0);
  free(buf);
  /* empty frame */
  assert_true(zmq_send(dealer, "", 0, 0) >= 0);
}

static void test_coordinator_survives_garbage(void **state)
{
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.token = "tok3n";
  config.job_id = "job-a";
  config.min_workers = 1;
  config.join_timeout_ms = 10000;
  herd_coord_t *coord = NULL;
  assert_int_equal(herd_coord_new(&config, &coord), HERD_OK);

  void *ctx = zmq_ctx_new();
  void *dealer = zmq_socket(ctx, ZMQ_DEALER);
  int linger = 0;
  zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
  assert_int_equal(zmq_connect(dealer, herd_coord_endpoint(coord)), 0);
  s_send_garbage(dealer);

  herd_coord_stats_t stats;
  int64_t deadline = s_now_ms() + 5000;
  do {
    usleep(10000);
    assert_int_equal(herd_coord_stats(coord, &stats), HERD_OK);
  } while (stats.malformed_messages < 50 && s_now_ms() < deadline);
  /* 50 random frames (a random frame that happens to parse is refused,
   * not counted), multipart, oversize, empty: at least 50 of 53. */
  assert_true(stats.malformed_messages >= 50);
  assert_int_equal(stats.members, 0);

  herd_worker_config_t wconfig = HERD_WORKER_CONFIG_INIT;
  wconfig.coord_endpoint = herd_coord_endpoint(coord);
  wconfig.token = "tok3n";
  wconfig.job_id = "job-a";
  wconfig.join_timeout_ms = 5000;
  herd_worker_t *worker = NULL;
  assert_int_equal(herd_worker_join(&wconfig, &worker), HERD_OK);
  herd_roster_t roster;
  assert_int_equal(herd_worker_roster(worker, &roster), HERD_OK);
  assert_int_equal(roster.generation, 1);
  assert_int_equal(roster.rank, 0);
  herd_worker_leave(&worker);
  assert_null(worker);

  zmq_close(dealer);
  zmq_ctx_term(ctx);
  herd_coord_destroy(&coord);
  assert_null(coord);
  herd_coord_destroy(&coord); /* safe twice */
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_join_roster_refused),
      cmocka_unit_test(test_roundtrip_reports),
      cmocka_unit_test(test_roundtrip_control_and_kv),
      cmocka_unit_test(test_large_roster_within_budget),
      cmocka_unit_test(test_random_bytes_rejected),
      cmocka_unit_test(test_truncated_rejected),
      cmocka_unit_test(test_oversize_rejected_before_decoding),
      cmocka_unit_test(test_wrong_version_job_token),
      cmocka_unit_test(test_token_compare),
      cmocka_unit_test(test_state_tables),
      cmocka_unit_test(test_coordinator_survives_garbage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
