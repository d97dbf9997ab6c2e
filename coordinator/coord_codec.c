/* Coordinator side of the wire: one frame in, a checked Envelope out.
 *
 * Order of checks matters: the size cap comes before protobuf-c sees a byte
 * (herd_wire_decode), then the protocol version and job id (so a worker of
 * another job or version gets a Refused with a reason instead of silence),
 * and the token last and only for Join and StatusRequest, compared in constant time so the
 * reply latency does not leak how much of a guess was right.
 */
#include <stdio.h>
#include <string.h>

#include "coord_internal.h"
#include "herd/herd.h"

int coord_codec_token_equal(const char *given, const char *expected)
{
  size_t given_len = strlen(given);
  size_t expected_len = strlen(expected);
  /* Time depends on the expected token's length only. */
  unsigned diff = (unsigned)(given_len != expected_len);
  for (size_t i = 0; i < expected_len; i++) {
    unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
    diff |= (unsigned)(g ^ (unsigned char)expected[i]);
  }
  return diff == 0;
}

static herd_result_t s_check_header(const coord_codec_limits_t *limits,
                                    const Herd__Envelope *env, char *reason,
                                    size_t reason_size)
{
  if (env->version != HERD_PROTOCOL_VERSION) {
    snprintf(reason, reason_size,
             "protocol version %u not supported (coordinator speaks %d)",
             env->version, HERD_PROTOCOL_VERSION);
    return HERD_EPROTO;
  }
  if (strcmp(env->job_id, limits->job_id) != 0) {
    snprintf(reason, reason_size, "wrong job id (this coordinator runs '%s')",
             limits->job_id);
    return HERD_EPROTO;
  }
  if (env->body_case == HERD__ENVELOPE__BODY_JOIN &&
      !coord_codec_token_equal(env->join->token, limits->token)) {
    snprintf(reason, reason_size, "wrong job token");
    return HERD_EAUTH;
  }
  if (env->body_case == HERD__ENVELOPE__BODY_STATUS_REQUEST &&
      !coord_codec_token_equal(env->status_request->token, limits->token)) {
    snprintf(reason, reason_size, "wrong job token");
    return HERD_EAUTH;
  }
  return HERD_OK;
}

herd_result_t coord_codec_decode(const coord_codec_limits_t *limits,
                                 const void *data, size_t size,
                                 herd_wire_msg_t *msg, char *reason,
                                 size_t reason_size)
{
  if (reason_size)
    reason[0] = '\0';
  herd_result_t rc =
      herd_wire_decode(data, size, limits->max_message_bytes, msg);
  if (rc == HERD_ETOOBIG) {
    snprintf(reason, reason_size, "frame of %zu bytes exceeds %zu", size,
             limits->max_message_bytes);
    return rc;
  }
  if (rc != HERD_OK) {
    snprintf(reason, reason_size, "undecodable frame of %zu bytes", size);
    return HERD_EFORMAT;
  }
  return s_check_header(limits, msg->env, reason, reason_size);
}

void coord_codec_envelope_init(const herd_coord_t *coord, Herd__Envelope *env)
{
  herd__envelope__init(env);
  env->version = HERD_PROTOCOL_VERSION;
  env->job_id = coord->job_id;
}

static void s_send_refused(herd_coord_t *coord, const void *routing_id,
                           size_t routing_id_len, const char *reason,
                           int job_done)
{
  Herd__Envelope env;
  Herd__Refused refused = HERD__REFUSED__INIT;
  coord_codec_envelope_init(coord, &env);
  refused.reason = (char *)reason;
  refused.job_done = job_done != 0;
  env.body_case = HERD__ENVELOPE__BODY_REFUSED;
  env.refused = &refused;
  if (herd_wire_send(coord->router, routing_id, routing_id_len, &env) !=
      HERD_OK)
    HERD_LOG(HERD_LOG_DEBUG, COORD_LOG, "refusal not delivered: %s", reason);
}

void coord_codec_send_refused(herd_coord_t *coord, const void *routing_id,
                              size_t routing_id_len, const char *reason)
{
  s_send_refused(coord, routing_id, routing_id_len, reason, 0);
}

void coord_codec_send_job_done(herd_coord_t *coord, const void *routing_id,
                               size_t routing_id_len)
{
  s_send_refused(coord, routing_id, routing_id_len, "job finished", 1);
}
