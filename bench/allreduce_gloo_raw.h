/* Raw Gloo baseline for bench/allreduce (C API over allreduce_gloo_raw.cc). */
#ifndef HERD_BENCH_GLOO_RAW_H
#define HERD_BENCH_GLOO_RAW_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef struct bench_gloo_raw bench_gloo_raw_t;
/* Rendezvous through gloo's FileStore in `dir`; NULL on failure. */
bench_gloo_raw_t *bench_gloo_raw_new(const char *dir, int rank, int world);
/* 0 on success; send == recv means in place. */
int bench_gloo_raw_allreduce(bench_gloo_raw_t *raw, const float *send,
                             float *recv, size_t count);
void bench_gloo_raw_destroy(bench_gloo_raw_t *raw);
#ifdef __cplusplus
}
#endif
#endif
