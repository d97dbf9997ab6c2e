/* The per-step element-wise loops (optimizer update, batch gather, bias,
 * ReLU and their gradients, the finiteness check) in two builds, AVX2 and
 * the x86-64 baseline, chosen once at load by the CPU (GCC's
 * target_clones, an ifunc): twice the vector width where the CPU has it,
 * and the binary still runs where it has not. These files are compiled
 * with -ffp-contract=off, so the AVX2 build uses no FMA: each element gets
 * the same IEEE operations, hence the same bits, on either build. */
#ifndef HERD_VECTOR_CLONES_H
#define HERD_VECTOR_CLONES_H

/* Sanitizer builds (and other CPUs) keep the one baseline build. */
#if defined(__x86_64__) && defined(__has_attribute) && !defined(__SANITIZE_ADDRESS__)
#if __has_attribute(target_clones)
#define HERD_VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef HERD_VECTOR_CLONES
#define HERD_VECTOR_CLONES
#endif

#endif
