/* The machine's limit for a model (bench/step_efficiency): its FLOP per
 * sample and OpenBLAS sgemm at its largest layer and the global batch on
 * all cores, measured by the same code herd-train's MFU uses (flops.c).
 * Usage: step_limit HIDDEN BATCH   (HIDDEN as herd-train's --hidden)
 * Prints {"flops_per_sample":..,"limit_flops":..,"m":..,"n":..,"k":..}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: step_limit HIDDEN BATCH (e.g. 256,128 256)\n");
    return 2;
  }
  int dims[HERD_MLP_MAX_DIMS] = {784}, n = 1;
  char *copy = strdup(argv[1]), *save = NULL;
  for (char *t = strtok_r(copy, ",", &save); t && n < HERD_MLP_MAX_DIMS - 1;
       t = strtok_r(NULL, ",", &save))
    dims[n++] = atoi(t);
  dims[n++] = 10;
  free(copy);
  int batch = atoi(argv[2]);
  herd_mlp_t *mlp = NULL;
  if (batch <= 0 || herd_mlp_new(dims, n, batch, &mlp) != HERD_OK) {
    fprintf(stderr, "step_limit: bad model or batch\n");
    return 2;
  }
  int big = 0;
  for (int l = 1; l < n - 1; l++)
    if ((double)dims[l] * dims[l + 1] > (double)dims[big] * dims[big + 1])
      big = l;
  /* The best of three of herd-train's start-up measurements: on a shared
   * VM the rate drops for a while when a neighbour is busy, and the limit
   * is what the machine can do. */
  double limit = 0;
  for (int i = 0; i < 3; i++) {
    double rate = herd_sgemm_cpu_flops(batch, dims[big + 1], dims[big]);
    limit = rate > limit ? rate : limit;
  }
  printf("{\"flops_per_sample\": %.0f, \"limit_flops\": %.6g, \"m\": %d, "
         "\"n\": %d, \"k\": %d}\n",
         herd_mlp_flops_per_sample(mlp), limit, batch, dims[big + 1],
         dims[big]);
  herd_mlp_destroy(&mlp);
  return 0;
}
