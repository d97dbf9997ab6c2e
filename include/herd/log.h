/* herd logging.
 *
 * HERD_LOG(level, subsystem, fmt, ...) checks the level before formatting.
 * HERD_LOG_LEVEL (error|warn|info|debug|trace, default warn) and
 * HERD_LOG_SUBSYS (comma list, default all) control it. Lines go to stderr
 * and carry the rank and generation once herd_log_set_context() was called,
 * so every worker line can be traced to its process and generation.
 * Thread-safe.
 */
#ifndef HERD_LOG_H
#define HERD_LOG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  HERD_LOG_ERROR = 0,
  HERD_LOG_WARN = 1,
  HERD_LOG_INFO = 2,
  HERD_LOG_DEBUG = 3,
  HERD_LOG_TRACE = 4
} herd_log_level_t;

extern int herd_log_level_g;

/* Reads HERD_LOG_LEVEL / HERD_LOG_SUBSYS; called lazily, safe to call again. */
void herd_log_init(void);
void herd_log_set_level(herd_log_level_t level);
/* rank < 0 means "not a worker"; shown as [r3 g2] when set. Per thread:
 * each line shows its own thread's context (a thread that never set one
 * shows the last one any thread set), so the training thread's lines name
 * the generation it trains in even while the link thread already holds a
 * newer roster. */
void herd_log_set_context(int rank, int64_t generation);
void herd_log_write(herd_log_level_t level, const char *subsystem,
                    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define HERD_LOG(level, subsystem, ...)                                        \
  do {                                                                         \
    if ((int)(level) <= herd_log_level_g)                                      \
      herd_log_write((level), (subsystem), __VA_ARGS__);                       \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
