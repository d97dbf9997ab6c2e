/* Which memory a collective's buffer is in: the mpi and gloo backends and
 * the fusion staging (comm_fusion.c) read and write host memory with the
 * CPU, so a GPU pointer there would crash or corrupt silently; they refuse
 * it instead (comm.c).
 *
 * The check asks the CUDA driver, but only if this process has loaded it
 * already (dlopen RTLD_NOLOAD): a process that never touched CUDA can hold
 * no device memory, and a CPU job must not create a CUDA context (hundreds
 * of MB of GPU memory, a second of start-up) just to learn that. No link
 * dependency on CUDA, so the same check is in every build.
 *
 * The check runs on every collective, so it must be cheap: a dlopen that
 * finds nothing costs ~10 us, so it is asked again only after the process
 * has loaded another library (dl_iterate_phdr's load counter, read from
 * the first entry: ~0.1 us). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dl_iterate_phdr */
#endif
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#include "comm_internal.h"

/* From cuda.h (a stable ABI since CUDA 4): cuPointerGetAttribute and the
 * two attributes asked. */
typedef int (*s_get_attribute_fn)(void *data, int attribute, uintptr_t ptr);
enum {
  S_CU_POINTER_ATTRIBUTE_MEMORY_TYPE = 2,
  S_CU_POINTER_ATTRIBUTE_IS_MANAGED = 8,
  S_CU_MEMORYTYPE_DEVICE = 2,
};

static _Atomic(s_get_attribute_fn) s_get_attribute;
/* The load counter when libcuda was last found missing; 0: never looked. */
static _Atomic unsigned long long s_missing_at;

/* The process's count of libraries loaded so far, from the first entry. */
static int s_first_entry(struct dl_phdr_info *info, size_t size, void *out)
{
  if (size >= offsetof(struct dl_phdr_info, dlpi_subs))
    *(unsigned long long *)out = info->dlpi_adds;
  return 1; /* one entry is enough */
}

static s_get_attribute_fn s_driver(void)
{
  s_get_attribute_fn fn = atomic_load(&s_get_attribute);
  if (fn)
    return fn;
  unsigned long long adds = 0;
  dl_iterate_phdr(s_first_entry, &adds);
  if (adds && adds == atomic_load(&s_missing_at))
    return NULL; /* nothing loaded since libcuda was found missing */
  void *lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) {
    atomic_store(&s_missing_at, adds);
    return NULL; /* CUDA not loaded here: no device memory exists */
  }
  fn = (s_get_attribute_fn)dlsym(lib, "cuPointerGetAttribute");
  dlclose(lib); /* NOLOAD took a reference; the library stays loaded */
  if (fn)
    atomic_store(&s_get_attribute, fn);
  return fn;
}

int herd_comm_is_device_memory(const void *ptr)
{
  s_get_attribute_fn get = ptr ? s_driver() : NULL;
  if (!get)
    return 0;
  unsigned int type = 0, managed = 0;
  /* Any error (host memory the driver never saw, or no cuInit yet) means
   * not device memory. Managed memory is host-accessible. */
  if (get(&type, S_CU_POINTER_ATTRIBUTE_MEMORY_TYPE, (uintptr_t)ptr) != 0 ||
      type != S_CU_MEMORYTYPE_DEVICE)
    return 0;
  return get(&managed, S_CU_POINTER_ATTRIBUTE_IS_MANAGED, (uintptr_t)ptr) != 0 ||
         !managed;
}
