/* Which memory a collective's buffer is in: the mpi and gloo backends and
 * the fusion staging (comm_fusion.c) read and write host memory with the
 * CPU, so a GPU pointer there would crash or corrupt silently; they refuse
 * it instead (comm.c).
 *
 * The check asks the CUDA driver, but only if this process has loaded it
 * already (dlopen RTLD_NOLOAD): a process that never touched CUDA can hold
 * no device memory, and a CPU job must not create a CUDA context (hundreds
 * of MB of GPU memory, a second of start-up) just to learn that. No link
 * dependency on CUDA, so the same check is in every build. */
#include <dlfcn.h>
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

static s_get_attribute_fn s_driver(void)
{
  s_get_attribute_fn fn = atomic_load(&s_get_attribute);
  if (fn)
    return fn;
  void *lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  if (!lib)
    return NULL; /* CUDA never loaded here: no device memory exists */
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
