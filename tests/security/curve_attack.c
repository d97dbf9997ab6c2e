/* The attacker of security.sh's curve_hijack: someone who can reach the
 * coordinator's port, holds its public key (it is printed, not secret) and
 * knows a member's exact routing id, but not the member's CURVE key.
 *
 *   curve_attack ENDPOINT SERVER_KEY ROUTING_ID GENERATION RANK
 *
 * For each of KvSet (overwrite a rendezvous key), PeerFailed (report the
 * member's rank dead), Leave and Done, it opens a new CURVE connection
 * under ROUTING_ID with a keypair of its own and sends the message; then
 * the same four without claiming the id (a stranger). It prints how many
 * connections completed the handshake ("attempts N, connected M") and
 * exits 0; what the coordinator did about them is the test's to check (the
 * job must carry on untouched). Every wait is bounded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "herd/version.h"
#include "herd_wire.h"

/* Connects, waits up to 1 s for the handshake (a monitor event), sends
 * `env`, and lingers 200 ms so it goes out. 1 when the handshake passed. */
static int s_attack(void *ctx, const char *endpoint, const char *server_key,
                    const char *routing_id, Herd__Envelope *env, int n)
{
  void *dealer = zmq_socket(ctx, ZMQ_DEALER), *monitor = zmq_socket(ctx, ZMQ_PAIR);
  char inproc[64];
  int linger = 200, timeout = 1000, connected = 0;
  snprintf(inproc, sizeof inproc, "inproc://attack-%d", n);
  zmq_socket_monitor(dealer, inproc, ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL);
  zmq_connect(monitor, inproc);
  zmq_setsockopt(monitor, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
  zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
  if (routing_id)
    zmq_setsockopt(dealer, ZMQ_ROUTING_ID, routing_id, strlen(routing_id));
  if (herd_wire_curve_client(dealer, server_key) != HERD_OK ||
      zmq_connect(dealer, endpoint) != 0) {
    fprintf(stderr, "curve_attack: %s\n", herd_error_detail());
    exit(1);
  }
  zmq_msg_t event;
  zmq_msg_init(&event);
  if (zmq_msg_recv(&event, monitor, 0) >= 2) {
    uint16_t id;
    memcpy(&id, zmq_msg_data(&event), sizeof id);
    connected = id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
  }
  zmq_msg_close(&event);
  herd_wire_send(dealer, NULL, 0, env);
  zmq_socket_monitor(dealer, NULL, 0);
  zmq_close(monitor);
  zmq_close(dealer);
  return connected;
}

int main(int argc, char **argv)
{
  if (argc != 6) {
    fprintf(stderr, "usage: curve_attack ENDPOINT SERVER_KEY ROUTING_ID "
                    "GENERATION RANK\n");
    return 2;
  }
  void *ctx = zmq_ctx_new();
  int attempts = 0, connected = 0;
  for (int claim = 1; claim >= 0; claim--)
    for (int kind = 0; kind < 4; kind++) {
      Herd__Envelope env = HERD__ENVELOPE__INIT;
      Herd__KvSet kv = HERD__KV_SET__INIT;
      Herd__PeerFailed failed = HERD__PEER_FAILED__INIT;
      Herd__Leave leave = HERD__LEAVE__INIT;
      Herd__Done done = HERD__DONE__INIT;
      env.version = HERD_PROTOCOL_VERSION;
      env.job_id = "herd";
      switch (kind) {
      case 0:
        kv.key = "gloo/g1/rank0";
        kv.value.data = (uint8_t *)"10.66.66.66:6666";
        kv.value.len = 16;
        kv.generation = atoll(argv[4]);
        env.body_case = HERD__ENVELOPE__BODY_KV_SET;
        env.kv_set = &kv;
        break;
      case 1:
        failed.generation = atoll(argv[4]);
        failed.rank = atoi(argv[5]);
        failed.reason = "forged";
        env.body_case = HERD__ENVELOPE__BODY_PEER_FAILED;
        env.peer_failed = &failed;
        break;
      case 2:
        leave.reason = "forged";
        env.body_case = HERD__ENVELOPE__BODY_LEAVE;
        env.leave = &leave;
        break;
      default:
        done.final_step = 1;
        done.world_size = 1;
        env.body_case = HERD__ENVELOPE__BODY_DONE;
        env.done = &done;
      }
      attempts++;
      connected += s_attack(ctx, argv[1], argv[2], claim ? argv[3] : NULL,
                            &env, attempts);
    }
  zmq_ctx_term(ctx);
  printf("attempts %d, connected %d\n", attempts, connected);
  return 0;
}
