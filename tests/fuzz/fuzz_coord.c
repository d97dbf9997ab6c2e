/* libFuzzer target: the coordinator's message handling. Each input is a
 * sequence of frames from up to 16 peers, fed to coord_handle_frame of a
 * coordinator built without sockets (coord_new_detached), with the tick
 * (timeouts, generations, watchdog, KV waits) and simulated connection
 * losses in between, so every state the handlers can reach from the wire
 * is exercised:
 *
 *   input  := record*
 *   record := [peer:1][op:1][len:2 little-endian][frame:len]
 *   op & 3 == 1: the peer's connection closes before the frame;
 *   op & 3 == 2: the tick runs as if op * 8 ms had passed (idle time);
 *   op & 8: the frame comes from another session (CURVE client key) than
 *   the peer's own, as from a second connection claiming its routing id.
 * Sessions are on (as under CURVE), so the binding of members to their
 * keys is exercised too.
 *
 * A fresh coordinator per input keeps runs independent and makes leaks
 * visible to LeakSanitizer.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "herd/clock.h"
#include "coord_internal.h"
#include "herd/herd.h"
#include "herd/coord.h"

#define FUZZ_PEERS 16

static herd_coord_t *s_new_coord(void)
{
  herd_coord_config_t config = HERD_COORD_CONFIG_INIT;
  config.token = "fuzz-token";
  config.job_id = "fuzz";
  config.min_workers = 2;
  config.max_workers = 4;
  config.last_call_ms = 1;
  config.host_cooldown_failures = 2;
  config.rejoin_window_ms = 5;
  config.watchdog_min_ms = 1;
  herd_coord_t *coord = NULL;
  if (coord_new_detached(&config, &coord) != HERD_OK)
    return NULL;
  coord->sessions = 1; /* as under CURVE */
  return coord;
}

static void s_record(herd_coord_t *coord, uint8_t peer, uint8_t op,
                     const uint8_t *frame, size_t len, int64_t *clock_ms)
{
  char id[8];
  int id_len = snprintf(id, sizeof id, "p%u", peer % FUZZ_PEERS);
  int fd = 100 + peer % FUZZ_PEERS;
  if ((op & 3) == 1)
    coord_member_disconnected(coord, fd, *clock_ms);
  if ((op & 3) == 2)
    *clock_ms += (int64_t)op * 8;
  char user[16];
  snprintf(user, sizeof user, "key-%u%s", peer % FUZZ_PEERS,
           op & 8 ? "-other" : "");
  coord->current_fd = fd;
  coord->current_user = user;
  coord_handle_frame(coord, id, (size_t)id_len, frame, len);
  coord->current_fd = -1;
  coord->current_user = "";
  coord->detect.router_drained = op & 4;
  coord_members_tick(coord, *clock_ms);
  coord_kv_service(coord, *clock_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  herd_log_level_g = -1; /* quiet: the fuzzer prints enough */
  herd_coord_t *coord = s_new_coord();
  if (!coord)
    return 0;
  int64_t clock_ms = herd_mono_ms();
  pthread_mutex_lock(&coord->lock);
  size_t pos = 0;
  for (int records = 0; pos + 4 <= size && records < 256; records++) {
    uint8_t peer = data[pos], op = data[pos + 1];
    size_t len = (size_t)data[pos + 2] | (size_t)data[pos + 3] << 8;
    pos += 4;
    if (len > size - pos)
      len = size - pos;
    s_record(coord, peer, op, data + pos, len, &clock_ms);
    pos += len;
  }
  pthread_mutex_unlock(&coord->lock);
  herd_coord_destroy(&coord);
  return 0;
}
