/* The client side of StatusRequest/StatusReply (herd_coord_query_status),
 * used by `herd status`. It lives with the coordinator because it speaks the
 * private wire protocol; the command line only sees JSON text.
 *
 * One short-lived DEALER: connect, send, wait for one reply (a Refused is an
 * answer too), close. The reply is decoded with the same bounded decoder
 * the coordinator uses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zmq.h>

#include "coord_internal.h"
#include "herd/herd.h"

#define CLIENT_MAX_REPLY_BYTES (4u << 20)

static json_t *s_members_json(const Herd__StatusReply *r)
{
  json_t *members = json_array();
  for (size_t i = 0; members && i < r->n_members; i++) {
    const Herd__MemberStatus *m = r->members[i];
    json_array_append_new(
        members,
        json_pack("{s:i, s:i, s:o, s:o, s:I, s:I}", "rank", m->rank, "pid",
                  m->pid, "host", coord_json_string(m->host), "state",
                  coord_json_string(m->state), "step", (json_int_t)m->step,
                  "last_seen_ms_ago", (json_int_t)m->last_seen_ms_ago));
  }
  return members ? members : json_array();
}

static char *s_reply_json(const Herd__StatusReply *r)
{
  json_t *obj = json_pack(
      "{s:I, s:i, s:o, s:I, s:I, s:o, s:o, s:I, s:I, s:i, s:i, s:i, s:o, "
      "s:o}",
      "generation", (json_int_t)r->generation, "world_size", r->world_size,
      "job_state", coord_json_string(r->job_state), "step", (json_int_t)r->step,
      "epoch", (json_int_t)r->epoch, "loss", coord_json_real(r->loss),
      "samples_per_second", coord_json_real(r->samples_per_second), "failures",
      (json_int_t)r->failures, "malformed_messages",
      (json_int_t)r->malformed_messages, "member_count", r->member_count,
      "min_workers", r->min_workers, "max_workers", r->max_workers, "failure",
      coord_json_string(r->failure), "uptime_seconds",
      coord_json_real(r->uptime_seconds));
  if (!obj)
    return NULL;
  json_object_set_new(obj, "members", s_members_json(r));
  char *text = json_dumps(obj, JSON_COMPACT);
  json_decref(obj);
  return text;
}

static herd_result_t s_send_request(void *dealer, const char *token,
                                    const char *job_id)
{
  Herd__Envelope env;
  Herd__StatusRequest request = HERD__STATUS_REQUEST__INIT;
  herd__envelope__init(&env);
  env.version = HERD_PROTOCOL_VERSION;
  env.job_id = (char *)job_id;
  request.token = (char *)token;
  env.body_case = HERD__ENVELOPE__BODY_STATUS_REQUEST;
  env.status_request = &request;
  zmq_msg_t frame;
  HERD_CHECK(herd_wire_pack(&env, &frame));
  if (zmq_msg_send(&frame, dealer, 0) < 0) {
    zmq_msg_close(&frame);
    return herd_error_set(HERD_EIO, "cannot send: %s", zmq_strerror(errno));
  }
  return HERD_OK;
}

/* Decodes the reply frame into JSON or a refusal. */
static herd_result_t s_read_reply(zmq_msg_t *frame, char **json_out)
{
  herd_wire_msg_t msg;
  herd_result_t rc = herd_wire_decode(zmq_msg_data(frame), zmq_msg_size(frame),
                                      CLIENT_MAX_REPLY_BYTES, &msg);
  if (rc != HERD_OK)
    return herd_error_set(HERD_EFORMAT, "malformed status reply");
  if (msg.env->body_case == HERD__ENVELOPE__BODY_REFUSED)
    rc = herd_error_set(HERD_EAUTH, "coordinator refused: %s",
                        msg.env->refused->reason);
  else if (msg.env->body_case != HERD__ENVELOPE__BODY_STATUS_REPLY)
    rc = herd_error_set(HERD_EPROTO, "unexpected %s reply",
                        herd_wire_body_name(msg.env));
  else if (!(*json_out = s_reply_json(msg.env->status_reply)))
    rc = HERD_ENOMEM;
  herd_wire_msg_clear(&msg);
  return rc;
}

herd_result_t herd_coord_query_status(const char *endpoint, const char *token,
                                      const char *job_id, int timeout_ms,
                                      char **json_out)
{
  herd_result_t rc = HERD_OK;
  if (!endpoint || !token || !json_out)
    return herd_error_set(HERD_EINVAL, "status: endpoint and token needed");
  *json_out = NULL;
  int zero = 0;
  void *ctx = zmq_ctx_new();
  void *dealer = ctx ? zmq_socket(ctx, ZMQ_DEALER) : NULL;
  if (!dealer) {
    rc = herd_error_set(HERD_ESYS, "zmq: %s", zmq_strerror(errno));
    goto out;
  }
  zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
  zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
  zmq_setsockopt(dealer, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
  const char *key = herd_setting_string(HERD_S_COORD_KEY);
  if (key && *key)
    HERD_TRY(herd_wire_curve_client(dealer, key));
  if (zmq_connect(dealer, endpoint) != 0) {
    rc = herd_error_set(HERD_EINVAL, "cannot connect to '%s': %s", endpoint,
                        zmq_strerror(errno));
    goto out;
  }
  HERD_TRY(s_send_request(dealer, token, job_id ? job_id : "herd"));
  zmq_msg_t frame;
  zmq_msg_init(&frame);
  if (zmq_msg_recv(&frame, dealer, 0) < 0)
    rc = herd_error_set(HERD_ETIMEDOUT, "no answer from %s within %d ms",
                        endpoint, timeout_ms);
  else
    rc = s_read_reply(&frame, json_out);
  zmq_msg_close(&frame);
out:
  if (dealer)
    zmq_close(dealer);
  if (ctx)
    zmq_ctx_term(ctx);
  return rc;
}
