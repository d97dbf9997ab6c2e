/* Clocks, in one place. Durations, timeouts and deadlines use
 * CLOCK_MONOTONIC (a clock step by NTP must not fail a worker or end a
 * wait early); CLOCK_REALTIME only for timestamps that people or other
 * hosts read (events, checkpoints) and for pthread waits on condition
 * variables made with the default clock. */
#ifndef HERD_CLOCK_H
#define HERD_CLOCK_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* CLOCK_MONOTONIC in milliseconds. */
int64_t herd_mono_ms(void);
/* CLOCK_MONOTONIC in seconds. */
double herd_mono_s(void);
/* CLOCK_REALTIME in seconds since 1970. */
double herd_unix_s(void);
/* `clock`'s now + ms (ms >= 0), normalised, for pthread_cond_timedwait,
 * pthread_timedjoin_np and the like. */
struct timespec herd_deadline_in(clockid_t clock, int64_t ms);

#ifdef __cplusplus
}
#endif
#endif
