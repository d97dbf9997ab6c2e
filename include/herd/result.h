/* herd result codes.
 *
 * One add-only list (X-macro) of every error herd can return. Functions that
 * can fail return herd_result_t; results go out through pointer arguments.
 * A failing function may also record a human-readable detail with
 * herd_error_set(); herd_error_detail() returns it (thread-local), so main()
 * can print one clear line ("cannot open 'x.gz': truncated header").
 */
#ifndef HERD_RESULT_H
#define HERD_RESULT_H

#ifdef __cplusplus
extern "C" {
#endif

/* Add new codes at the end; never renumber. */
#define HERD_RESULT_LIST(X)                                                    \
  X(HERD_OK, 0, "success")                                                     \
  X(HERD_EINVAL, -1, "invalid argument")                                       \
  X(HERD_ENOMEM, -2, "out of memory")                                          \
  X(HERD_EIO, -3, "input/output error")                                        \
  X(HERD_ENOENT, -4, "not found")                                              \
  X(HERD_EFORMAT, -5, "malformed data")                                        \
  X(HERD_ETIMEDOUT, -6, "timed out")                                           \
  X(HERD_EABORTED, -7, "operation aborted")                                    \
  X(HERD_EPEER, -8, "peer failed")                                             \
  X(HERD_EPROTO, -9, "protocol error")                                         \
  X(HERD_EAUTH, -10, "authentication failed")                                  \
  X(HERD_ECHECKSUM, -11, "checksum mismatch")                                  \
  X(HERD_ENOSPC, -12, "no space left on device")                               \
  X(HERD_EBACKEND, -13, "collective backend error")                            \
  X(HERD_EUNSUPPORTED, -14, "not supported")                                   \
  X(HERD_ESTATE, -15, "invalid state")                                         \
  X(HERD_ETOOBIG, -16, "size limit exceeded")                                  \
  X(HERD_ESYS, -17, "system call failed")                                      \
  X(HERD_EINTR, -18, "interrupted")                                            \
  X(HERD_ERECONFIG, -19, "membership changed")                                 \
  X(HERD_ENONFINITE, -20, "non-finite value")

typedef enum {
#define HERD_RESULT_ENUM_(name, value, text) name = value,
  HERD_RESULT_LIST(HERD_RESULT_ENUM_)
#undef HERD_RESULT_ENUM_
} herd_result_t;

/* Static description of a result code ("invalid argument"); never NULL. */
const char *herd_strerror(herd_result_t result);
/* The code's name ("HERD_EINVAL"); never NULL. */
const char *herd_err_name(herd_result_t result);

/* Records a detail message for the calling thread and returns `result`, so
 * `return herd_error_set(HERD_EFORMAT, "bad magic in %s", path);` works. */
herd_result_t herd_error_set(herd_result_t result, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The calling thread's last detail, or herd_strerror() of the last code set
 * when no detail was given; "" if nothing was recorded. Thread-local. */
const char *herd_error_detail(void);
void herd_error_clear(void);

/* Propagate a failure to the caller. */
#define HERD_CHECK(call)                                                       \
  do {                                                                         \
    herd_result_t herd_check_rc_ = (call);                                     \
    if (herd_check_rc_ != HERD_OK)                                             \
      return herd_check_rc_;                                                   \
  } while (0)

/* Store a failure in the local `rc` and jump to the function's `out:`. */
#define HERD_TRY(call)                                                         \
  do {                                                                         \
    rc = (call);                                                               \
    if (rc != HERD_OK)                                                         \
      goto out;                                                                \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
