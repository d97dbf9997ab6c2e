/* The model's FLOP per sample and the CPU's sgemm rate at a shape: the two
 * halves of model FLOP utilization (peak.c wires them into herd-train;
 * bench/step_efficiency measures the limit with the same code). */
#include <cblas.h>
#include <stdlib.h>
#include <unistd.h>

#include "herd/clock.h"
#include "mlp.h"

/* Forward (2 m n k per layer), weight gradients (the same) and input
 * gradients of every layer but the first (nothing needs the input's). */
double herd_mlp_flops_per_sample(const herd_mlp_t *mlp)
{
  double flops = 0;
  for (int l = 0; l < herd_mlp_n_layers(mlp); l++) {
    double mk = (double)herd_mlp_dim(mlp, l) * herd_mlp_dim(mlp, l + 1);
    flops += (l > 0 ? 6 : 4) * mk;
  }
  return flops;
}

/* sgemm of (m x k) by (k x n)^T, as the forward pass calls it. */
double herd_sgemm_cpu_flops(int m, int n, int k)
{
  float *a = calloc((size_t)m * k, sizeof *a);
  float *b = calloc((size_t)n * k, sizeof *b);
  float *c = calloc((size_t)m * n, sizeof *c);
  double best = 0;
  if (a && b && c) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads(cores > 0 ? (int)cores : 1);
    for (int window = 0; window < 4; window++) { /* the first warms up */
      double start = herd_mono_s(), now = start;
      int calls = 0;
      while (now - start < 0.1 || calls < 2) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a,
                    k, b, k, 0.0f, c, n);
        calls++;
        now = herd_mono_s();
      }
      double rate = 2.0 * m * n * k * calls / (now - start);
      if (window > 0 && rate > best)
        best = rate;
    }
    openblas_set_num_threads(1); /* as herd_mlp_new set it */
  }
  free(a);
  free(b);
  free(c);
  return best;
}

