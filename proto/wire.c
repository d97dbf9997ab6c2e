/* Bounded Envelope decode and non-blocking send (see herd_wire.h).
 *
 * The budget allocator is the piece that matters for safety: protobuf-c
 * allocates one struct per sub-message and per repeated element, so a 64 KiB
 * frame of empty sub-messages would otherwise become megabytes. The budget is
 * a multiple of the frame size, generous for any honest message.
 */
#include "herd_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

/* Honest messages expand ~4x (strings are copied 1:1, members ~56 bytes per
 * ~20 wire bytes); 32x plus a floor leaves room without inviting abuse. */
#define WIRE_BUDGET_FACTOR 32
#define WIRE_BUDGET_FLOOR 4096

static void *s_budget_alloc(void *data, size_t size)
{
  herd_wire_msg_t *msg = data;
  if (size > msg->budget_bytes - msg->allocated_bytes)
    return NULL;
  msg->allocated_bytes += size;
  return malloc(size ? size : 1);
}

static void s_budget_free(void *data, void *pointer)
{
  (void)data;
  free(pointer);
}

herd_result_t herd_wire_decode(const void *data, size_t size, size_t max_bytes,
                               herd_wire_msg_t *msg)
{
  memset(msg, 0, sizeof *msg);
  if (size > max_bytes)
    return HERD_ETOOBIG;
  if (!data && size)
    return HERD_EINVAL;
  msg->allocator.alloc = s_budget_alloc;
  msg->allocator.free = s_budget_free;
  msg->allocator.allocator_data = msg;
  msg->budget_bytes = size * WIRE_BUDGET_FACTOR + WIRE_BUDGET_FLOOR;
  msg->env = herd__envelope__unpack(&msg->allocator, size, data);
  if (!msg->env)
    return HERD_EFORMAT;
  if (msg->env->body_case == HERD__ENVELOPE__BODY__NOT_SET) {
    herd_wire_msg_clear(msg);
    return HERD_EFORMAT;
  }
  return HERD_OK;
}

void herd_wire_msg_clear(herd_wire_msg_t *msg)
{
  if (!msg)
    return;
  if (msg->env)
    herd__envelope__free_unpacked(msg->env, &msg->allocator);
  memset(msg, 0, sizeof *msg);
}

herd_result_t herd_wire_pack(const Herd__Envelope *env, void *zmq_msg)
{
  size_t size = herd__envelope__get_packed_size(env);
  if (zmq_msg_init_size(zmq_msg, size) != 0)
    return HERD_ENOMEM;
  herd__envelope__pack(env, zmq_msg_data(zmq_msg));
  return HERD_OK;
}

herd_result_t herd_wire_send(void *socket, const void *routing_id,
                             size_t routing_id_len, const Herd__Envelope *env)
{
  zmq_msg_t payload;
  herd_result_t rc = herd_wire_pack(env, &payload);
  if (rc != HERD_OK)
    return rc;
  if (routing_id && zmq_send(socket, routing_id, routing_id_len,
                             ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&payload);
    return HERD_EIO;
  }
  if (zmq_msg_send(&payload, socket, ZMQ_DONTWAIT) < 0) {
    zmq_msg_close(&payload);
    return HERD_EIO;
  }
  return HERD_OK;
}

const char *herd_wire_body_name(const Herd__Envelope *env)
{
  switch (env ? env->body_case : HERD__ENVELOPE__BODY__NOT_SET) {
  case HERD__ENVELOPE__BODY_JOIN:
    return "join";
  case HERD__ENVELOPE__BODY_ROSTER:
    return "roster";
  case HERD__ENVELOPE__BODY_REFUSED:
    return "refused";
  case HERD__ENVELOPE__BODY_HEARTBEAT:
    return "heartbeat";
  case HERD__ENVELOPE__BODY_STEP_REPORT:
    return "step_report";
  case HERD__ENVELOPE__BODY_EPOCH_END:
    return "epoch_end";
  case HERD__ENVELOPE__BODY_CKPT_COMMITTED:
    return "ckpt_committed";
  case HERD__ENVELOPE__BODY_DONE:
    return "done";
  case HERD__ENVELOPE__BODY_LEAVE:
    return "leave";
  case HERD__ENVELOPE__BODY_PEER_FAILED:
    return "peer_failed";
  case HERD__ENVELOPE__BODY_ABORT:
    return "abort";
  case HERD__ENVELOPE__BODY_KV_SET:
    return "kv_set";
  case HERD__ENVELOPE__BODY_KV_GET:
    return "kv_get";
  case HERD__ENVELOPE__BODY_KV_VALUE:
    return "kv_value";
  case HERD__ENVELOPE__BODY_REJOIN:
    return "rejoin";
  case HERD__ENVELOPE__BODY_STATUS_REQUEST:
    return "status_request";
  case HERD__ENVELOPE__BODY_STATUS_REPLY:
    return "status_reply";
  default:
    return "none";
  }
}

herd_result_t herd_wire_curve_client(void *socket, const char *server_key)
{
  char public_key[41], secret_key[41];
  uint8_t binary[32];
  if (!server_key || strlen(server_key) != 40 ||
      !zmq_z85_decode(binary, server_key))
    return herd_error_set(HERD_EINVAL, "the coordinator's public key (HERD_"
                          "COORD_KEY) is not 40 characters of Z85");
  if (!zmq_has("curve"))
    return herd_error_set(HERD_EUNSUPPORTED,
                          "this libzmq was built without CURVE");
  if (zmq_curve_keypair(public_key, secret_key) != 0 ||
      zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_key, 40) != 0 ||
      zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, public_key, 40) != 0 ||
      zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, secret_key, 40) != 0)
    return herd_error_set(HERD_ESYS, "CURVE client: %s", zmq_strerror(errno));
  return HERD_OK;
}
