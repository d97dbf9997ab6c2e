/* libFuzzer target: the coordinator's frame decoder (coord_codec_decode,
 * i.e. the size cap, protobuf-c under the budget allocator, and the
 * version / job id / token checks). A frame that decodes is packed again
 * and decoded again. Nothing here may crash, leak or trip a sanitizer,
 * whatever the bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"
#include "herd/herd.h"
#include "herd/coord.h"

static const coord_codec_limits_t s_limits = {"fuzz", "fuzz-token", 69632};

static void s_repack(const Herd__Envelope *env)
{
  size_t size = herd__envelope__get_packed_size(env);
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf)
    return;
  herd__envelope__pack(env, buf);
  herd_wire_msg_t again;
  char reason[160];
  /* Decoding our own output must be safe too. (Not necessarily successful:
   * protobuf-c re-emits unknown fields such as field number 0 in a form
   * its own decoder rejects, so "round trips" is not a property here.) */
  (void)coord_codec_decode(&s_limits, buf, size, &again, reason,
                           sizeof reason);
  herd_wire_msg_clear(&again);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  herd_wire_msg_t msg;
  char reason[160];
  herd_log_level_g = -1; /* quiet: the fuzzer prints enough */
  herd_result_t rc =
      coord_codec_decode(&s_limits, data, size, &msg, reason, sizeof reason);
  if (msg.env) {
    (void)herd_wire_body_name(msg.env);
    if (rc == HERD_OK)
      s_repack(msg.env);
  }
  herd_wire_msg_clear(&msg);
  return 0;
}
