/* The control plane's security: CURVE on the ROUTER, a ZAP handler, and
 * sessions bound to the client key a member joined with.
 *
 * With config.curve_secret_key, every connection is a CURVE handshake
 * (encrypted and authenticated; a client without the server's public key
 * cannot complete it), and libzmq asks our ZAP handler (RFC 27) about each
 * one before it may deliver a message. The handler accepts any client key
 * (a worker proves itself with the job token in its Join) and names the
 * key as the connection's user id, which every message then carries
 * (zmq_msg_gets "User-Id"). A member is bound to the key of its Join,
 * and any message for the member from another key is dropped.
 *
 * Routing ids are the client's choice, so a second connection can claim a
 * member's. Under CURVE the ROUTER does not hand a routing id over
 * (ZMQ_ROUTER_HANDOVER off): while the member's own connection lives, a
 * second one with its id is held aside by libzmq and never delivered, and
 * the member's connection is untouched. (ZAP cannot refuse it earlier: the
 * request names the server's routing id, not the client's.) A member that
 * reconnects after a cut gets its id back once the ROUTER has dropped the
 * dead connection, which ZMTP heartbeats on the ROUTER bound to a few
 * seconds; its messages wait in the new connection meanwhile. A worker
 * keeps its keypair across reconnects, so its own reconnections pass the
 * session check. Replaying a captured message on a new connection is
 * useless: CURVE's keys are per connection.
 *
 * Without a secret key, nothing here runs (the loopback default).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "coord_internal.h"
#include "herd/log.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ZAP_FRAMES 7 /* version, id, domain, address, identity, mechanism,
                          credentials (CURVE: the client key) */

herd_result_t herd_curve_keypair(char *public_key, char *secret_key)
{
  if (!zmq_has("curve"))
    return herd_error_set(HERD_EUNSUPPORTED,
                          "this libzmq was built without CURVE");
  if (zmq_curve_keypair(public_key, secret_key) != 0)
    return herd_error_set(HERD_ESYS, "zmq_curve_keypair: %s",
                          zmq_strerror(errno));
  return HERD_OK;
}

const char *herd_coord_public_key(const herd_coord_t *coord)
{
  return coord && coord->public_key[0] ? coord->public_key : NULL;
}

herd_result_t coord_curve_setup(herd_coord_t *coord)
{
  const char *secret = coord->config.curve_secret_key;
  coord->current_user = "";
  if (!secret)
    return HERD_OK;
  if (!zmq_has("curve"))
    return herd_error_set(HERD_EUNSUPPORTED,
                          "CURVE asked for, but this libzmq has no CURVE");
  if (strlen(secret) != 40 || zmq_curve_public(coord->public_key, secret) != 0)
    return herd_error_set(HERD_EINVAL, "the coordinator's CURVE secret key "
                          "is not 40 characters of Z85");
  /* The ZAP handler first: libzmq consults it from the first handshake. */
  coord->zap = zmq_socket(coord->zmq_ctx, ZMQ_REP);
  int zero = 0, one = 1;
  if (!coord->zap || zmq_bind(coord->zap, S_ZAP_ENDPOINT) != 0)
    return herd_error_set(HERD_ESYS, "ZAP handler: %s", zmq_strerror(errno));
  zmq_setsockopt(coord->zap, ZMQ_LINGER, &zero, sizeof zero);
  /* No handover (above); dead connections dropped within ~3 s so that a
   * member's reconnection gets its routing id back. */
  int heartbeat_ms = 1000, heartbeat_timeout_ms = 3000;
  if (zmq_setsockopt(coord->router, ZMQ_ROUTER_HANDOVER, &zero, sizeof zero) ||
      zmq_setsockopt(coord->router, ZMQ_HEARTBEAT_IVL, &heartbeat_ms,
                     sizeof heartbeat_ms) ||
      zmq_setsockopt(coord->router, ZMQ_HEARTBEAT_TIMEOUT,
                     &heartbeat_timeout_ms, sizeof heartbeat_timeout_ms) ||
      zmq_setsockopt(coord->router, ZMQ_CURVE_SERVER, &one, sizeof one) ||
      zmq_setsockopt(coord->router, ZMQ_CURVE_SECRETKEY, secret, 40) ||
      zmq_setsockopt(coord->router, ZMQ_ZAP_DOMAIN, "herd", 4))
    return herd_error_set(HERD_ESYS, "CURVE on the ROUTER: %s",
                          zmq_strerror(errno));
  coord->config.curve_secret_key = NULL; /* the caller's string: only now */
  coord->sessions = 1;
  return HERD_OK;
}

/* One ZAP request (RFC 27) in `frames`: the reply's status and user id. */
static void s_answer(herd_coord_t *coord, zmq_msg_t *frames, int n)
{
  char user[41] = "", reason[64] = "OK";
  const char *status = "400";
  int well_formed = n == S_ZAP_FRAMES &&
                    zmq_msg_size(&frames[0]) == 3 &&
                    !memcmp(zmq_msg_data(&frames[0]), "1.0", 3) &&
                    zmq_msg_size(&frames[5]) == 5 &&
                    !memcmp(zmq_msg_data(&frames[5]), "CURVE", 5) &&
                    zmq_msg_size(&frames[6]) == 32;
  if (!well_formed) {
    snprintf(reason, sizeof reason, "CURVE only");
  } else {
    /* Any key may connect (a worker proves itself with the token in its
     * Join); the key is the connection's user id, its session. */
    zmq_z85_encode(user, zmq_msg_data(&frames[6]), 32);
    status = "200";
  }
  const char *reply[6] = {"1.0", NULL, status, reason, user, ""};
  for (int i = 0; i < 6; i++) {
    int more = i < 5 ? ZMQ_SNDMORE : 0;
    if (i == 1 && n >= 2) /* the request id, echoed as it came */
      zmq_send(coord->zap, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]),
               more);
    else
      zmq_send(coord->zap, i == 1 ? "" : reply[i],
               i == 1 ? 0 : strlen(reply[i]), more);
  }
}

void coord_curve_service(herd_coord_t *coord)
{
  if (!coord->zap)
    return;
  for (int requests = 0; requests < 256; requests++) {
    zmq_msg_t frames[S_ZAP_FRAMES + 1];
    int n = 0, more = 1;
    while (more) {
      zmq_msg_t *frame = &frames[n < S_ZAP_FRAMES ? n : S_ZAP_FRAMES];
      zmq_msg_init(frame);
      if (zmq_msg_recv(frame, coord->zap, n ? 0 : ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(frame);
        if (!n)
          return; /* nothing waiting */
        break;
      }
      more = zmq_msg_more(frame);
      if (n >= S_ZAP_FRAMES)
        zmq_msg_close(frame); /* an extra frame: ill-formed, dropped */
      n++;
    }
    s_answer(coord, frames, n);
    for (int i = 0; i < n && i < S_ZAP_FRAMES; i++)
      zmq_msg_close(&frames[i]);
  }
}

int coord_curve_session_ok(herd_coord_t *coord, coord_member_t *member,
                           const char *user)
{
  if (!coord->sessions)
    return 1;
  if (!member->session[0]) {
    snprintf(member->session, sizeof member->session, "%s", user);
    return 1;
  }
  if (!strcmp(member->session, user))
    return 1;
  coord->members.session_refusals++;
  HERD_LOG(HERD_LOG_WARN, COORD_LOG,
           "dropped a message for worker pid %d on %s from another session",
           member->pid, member->host);
  return 0;
}

void coord_curve_close(herd_coord_t *coord)
{
  if (coord->zap)
    zmq_close(coord->zap);
  coord->zap = NULL;
}
