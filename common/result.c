/* Result codes and the per-thread error detail.
 *
 * Codes come from the one X-macro list in herd/result.h. The detail string
 * lets a deep failure ("truncated pixels in x.gz") reach main() intact
 * without any library code printing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "herd/result.h"

static _Thread_local char s_detail[512];

const char *herd_strerror(herd_result_t result)
{
  switch (result) {
#define HERD_RESULT_TEXT_(name, value, text)                                   \
  case name:                                                                   \
    return text;
    HERD_RESULT_LIST(HERD_RESULT_TEXT_)
#undef HERD_RESULT_TEXT_
  }
  return "unknown error";
}

const char *herd_err_name(herd_result_t result)
{
  switch (result) {
#define HERD_RESULT_NAME_(name, value, text)                                   \
  case name:                                                                   \
    return #name;
    HERD_RESULT_LIST(HERD_RESULT_NAME_)
#undef HERD_RESULT_NAME_
  }
  return "HERD_EUNKNOWN";
}

herd_result_t herd_error_set(herd_result_t result, const char *fmt, ...)
{
  if (!fmt) {
    snprintf(s_detail, sizeof s_detail, "%s", herd_strerror(result));
    return result;
  }
  /* Format into a scratch buffer first: callers may pass the current
   * detail as an argument ("cannot resume: %s", herd_error_detail()). */
  char scratch[sizeof s_detail];
  va_list args;
  va_start(args, fmt);
  vsnprintf(scratch, sizeof scratch, fmt, args);
  va_end(args);
  memcpy(s_detail, scratch, sizeof s_detail);
  return result;
}

const char *herd_error_detail(void) { return s_detail; }

void herd_error_clear(void) { s_detail[0] = '\0'; }
