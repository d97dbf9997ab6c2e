/* herd wire helpers: bounded decode and zero-copy send of control Envelopes.
 *
 * Shared by the coordinator (libherd_coord) and the worker runtime (libherd)
 * so both sides check sizes the same way. Not a public header: modules that
 * speak the protocol include it from proto/.
 *
 * Decoding is bounded twice: a frame larger than the caller's limit is
 * rejected before protobuf-c sees it, and the unpacker allocates through a
 * budget allocator, so a small frame cannot expand into a large allocation
 * (e.g. thousands of empty repeated sub-messages).
 */
#ifndef HERD_WIRE_H
#define HERD_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "herd.pb-c.h"
#include "herd/result.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A decoded Envelope plus the allocator that owns its memory. Lives on the
 * caller's stack; must not be moved between decode and clear. */
typedef struct {
  Herd__Envelope *env;
  ProtobufCAllocator allocator;
  size_t allocated_bytes;
  size_t budget_bytes;
} herd_wire_msg_t;

/* Decodes one frame. Returns HERD_ETOOBIG when size > max_bytes (nothing is
 * parsed), HERD_EFORMAT when the bytes are not an Envelope, the allocation
 * budget is exceeded, or no body is set. On success msg->env is set and the
 * caller calls herd_wire_msg_clear(). On failure msg is already clear.
 * Protocol version and job id are not checked here (the caller decides
 * whether a mismatch earns a Refused reply). Thread-safe. */
herd_result_t herd_wire_decode(const void *data, size_t size, size_t max_bytes,
                               herd_wire_msg_t *msg);
/* Frees a decoded message; safe on a cleared or zeroed msg. */
void herd_wire_msg_clear(herd_wire_msg_t *msg);

/* Packs `env` into a new zmq_msg_t (`zmq_msg` must be uninitialised); the
 * caller owns the message (zmq_msg_send or zmq_msg_close). */
herd_result_t herd_wire_pack(const Herd__Envelope *env, void *zmq_msg);

/* Sends `env` on `socket` without blocking. With routing_id non-NULL the
 * message goes out as [routing_id][payload] (ROUTER side). Returns HERD_EIO
 * when the socket would block or the peer is gone; the message is dropped
 * then (control messages are small and periodic, so a drop is recovered by
 * the next heartbeat or roster, never by blocking the sender's thread). */
herd_result_t herd_wire_send(void *socket, const void *routing_id,
                             size_t routing_id_len, const Herd__Envelope *env);

/* "join", "step_report", ... for logs; never NULL. */
const char *herd_wire_body_name(const Herd__Envelope *env);

#ifdef __cplusplus
}
#endif
/* CURVE client options on a ZeroMQ socket, before its connect: the
 * server's Z85 public key (40 characters) and a fresh keypair of its own,
 * which the socket keeps for every reconnect. HERD_EINVAL for a malformed
 * key, HERD_EUNSUPPORTED without CURVE in this libzmq. */
herd_result_t herd_wire_curve_client(void *socket, const char *server_key);

#endif
