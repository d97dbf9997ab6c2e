/* Logging: one line per call on stderr, filtered by level and subsystem.
 *
 * The level check happens in the HERD_LOG macro, so disabled lines cost one
 * integer compare. Lines carry a timestamp and, in workers, [rank gen] so
 * interleaved output of many processes stays readable.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "herd/settings.h"
#include "herd/log.h"

int herd_log_level_g = HERD_LOG_WARN;

static char s_subsystems[256];   /* comma list; empty = all */
/* The context is per thread: the training thread names the generation it
 * trains in, the worker's link thread the roster it just received (which
 * may be newer). A thread that never set one (a helper: checkpoint writer,
 * collective progress) shows the last context any thread set. */
static _Thread_local int s_thread_set, s_thread_rank;
static _Thread_local int64_t s_thread_generation;
static int s_rank = -1;
static int64_t s_generation = -1;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const s_level_names[] = {"error", "warn", "info", "debug",
                                             "trace"};

static void s_init_once(void)
{
  const char *level = herd_setting_string(HERD_S_LOG_LEVEL);
  if (level) {
    for (int i = 0; i <= HERD_LOG_TRACE; i++)
      if (strcasecmp(level, s_level_names[i]) == 0)
        herd_log_level_g = i;
  }
  const char *subsys = herd_setting_string(HERD_S_LOG_SUBSYS);
  if (subsys)
    snprintf(s_subsystems, sizeof s_subsystems, "%s", subsys);
}

void herd_log_init(void) { pthread_once(&s_once, s_init_once); }

/* Runs before main() so the first HERD_LOG already sees HERD_LOG_LEVEL. */
__attribute__((constructor)) static void s_log_constructor(void)
{
  herd_log_init();
}

void herd_log_set_level(herd_log_level_t level) { herd_log_level_g = level; }

void herd_log_set_context(int rank, int64_t generation)
{
  s_thread_set = 1;
  s_thread_rank = rank;
  s_thread_generation = generation;
  pthread_mutex_lock(&s_lock);
  s_rank = rank;
  s_generation = generation;
  pthread_mutex_unlock(&s_lock);
}

static int s_subsystem_enabled(const char *subsystem)
{
  if (!s_subsystems[0] || !subsystem)
    return 1;
  size_t len = strlen(subsystem);
  for (const char *p = s_subsystems; (p = strstr(p, subsystem)); p += len) {
    int starts = p == s_subsystems || p[-1] == ',';
    int ends = p[len] == '\0' || p[len] == ',';
    if (starts && ends)
      return 1;
  }
  return 0;
}

void herd_log_write(herd_log_level_t level, const char *subsystem,
                    const char *fmt, ...)
{
  herd_log_init();
  if (!s_subsystem_enabled(subsystem))
    return;
  char message[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(message, sizeof message, fmt, args);
  va_end(args);

  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  char context[64] = "";
  int rank = s_thread_rank;
  int64_t generation = s_thread_generation;
  if (!s_thread_set) {
    pthread_mutex_lock(&s_lock);
    rank = s_rank;
    generation = s_generation;
    pthread_mutex_unlock(&s_lock);
  }
  if (rank >= 0)
    snprintf(context, sizeof context, " [r%d g%lld]", rank,
             (long long)generation);
  int level_index = level < 0 ? 0 : level > HERD_LOG_TRACE ? HERD_LOG_TRACE : level;
  fprintf(stderr, "%lld.%03ld herd %s%s %s: %s\n", (long long)now.tv_sec,
          now.tv_nsec / 1000000, s_level_names[level_index], context,
          subsystem ? subsystem : "-", message);
}
