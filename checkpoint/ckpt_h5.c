/* HDF5 glue for checkpoints: one lock around the (non-thread-safe) library,
 * error-stack conversion into herd results, file access properties, the
 * dtype <-> HDF5 type table and bounded attribute helpers.
 *
 * HDF5 prints its error stack to stderr by default; herd libraries never
 * print, so auto-printing is turned off and a failing call's stack becomes
 * one debug log line plus a detail naming the file (STYLE.md, "Errors").
 * Every read helper checks class, size and shape before reading, because the
 * file may be garbage.
 */
#include "ckpt_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "herd/log.h"

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init_once(void)
{
#if !H5_VERSION_GE(1, 10, 7) || (H5_VERS_MINOR == 12 && H5_VERS_RELEASE < 1)
  /* No H5Pset_file_locking: the environment is the only switch. Do not
   * override a user's explicit choice. */
  setenv("HDF5_USE_FILE_LOCKING", "FALSE", 0);
#endif
  H5open();
}

void ckpt_lock(void)
{
  pthread_once(&s_once, s_init_once);
  pthread_mutex_lock(&s_lock);
  /* Per call, not once: another component may have turned printing back on. */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void ckpt_unlock(void) { pthread_mutex_unlock(&s_lock); }

typedef struct {
  char text[1024]; /* the whole stack, for the debug line */
  size_t len;
  char first[256];  /* innermost description, for the detail */
  char nospace[32]; /* "errno = 28," as HDF5's sec2 driver formats it */
  bool saw_nospace;
} s_stack_t;

static herr_t s_walk_cb(unsigned n, const H5E_error2_t *err, void *data)
{
  s_stack_t *stack = data;
  const char *desc = err->desc ? err->desc : "";
  const char *func = err->func_name ? err->func_name : "?";
  if (n == 0)
    snprintf(stack->first, sizeof stack->first, "%s", desc);
  if (strstr(desc, stack->nospace))
    stack->saw_nospace = true;
  if (stack->len < sizeof stack->text - 1) {
    int w = snprintf(stack->text + stack->len, sizeof stack->text - stack->len,
                     "%s#%u %s(): %s", n ? "; " : "", n, func, desc);
    if (w > 0)
      stack->len += (size_t)w;
    if (stack->len > sizeof stack->text - 1)
      stack->len = sizeof stack->text - 1;
  }
  return 0;
}

/* HDF5 descriptions can embed newlines (ctime() in the sec2 driver's write
 * errors); a log line and a detail must stay one line. */
static void s_one_line(char *text)
{
  for (; *text; text++)
    if (*text == '\n' || *text == '\r')
      *text = ' ';
}

herd_result_t ckpt_h5_fail(herd_result_t rc, const char *path, const char *what)
{
  s_stack_t stack;
  memset(&stack, 0, sizeof stack);
  /* errno itself may be stale by now; the driver's own message is not. */
  snprintf(stack.nospace, sizeof stack.nospace, "errno = %d,", ENOSPC);
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, s_walk_cb, &stack);
  H5Eclear2(H5E_DEFAULT);
  s_one_line(stack.text);
  s_one_line(stack.first);
  HERD_LOG(HERD_LOG_DEBUG, "ckpt", "HDF5 error, %s '%s': %s", what, path,
           stack.text);
  if (rc == HERD_EIO && stack.saw_nospace)
    rc = HERD_ENOSPC;
  return herd_error_set(rc, "checkpoint '%s': %s failed%s%s", path, what,
                        stack.first[0] ? ": " : "", stack.first);
}

hid_t ckpt_fapl_new(void)
{
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0)
    return H5I_INVALID_HID;
  /* v1.10 object formats checksum superblock, object headers and chunk
   * indexes, so a damaged structure is an error instead of a wild read. */
  if (H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) < 0)
    goto fail;
  /* SEMI: H5Fclose fails instead of silently keeping the file open when an
   * object leaked, so "closed" really means closed before we rename. */
  if (H5Pset_fclose_degree(fapl, H5F_CLOSE_SEMI) < 0)
    goto fail;
#if H5_VERSION_GE(1, 10, 7) && !(H5_VERS_MINOR == 12 && H5_VERS_RELEASE < 1)
  /* Locking fails on many shared file systems (NFS, Lustre without flock);
   * the commit protocol, not locks, is what keeps readers safe. */
  if (H5Pset_file_locking(fapl, false, true) < 0)
    goto fail;
#endif
  return fapl;
fail:
  H5Pclose(fapl);
  return H5I_INVALID_HID;
}

size_t ckpt_dtype_size(herd_dtype_t dtype)
{
  switch (dtype) {
  case HERD_DTYPE_F32:
    return 4;
  case HERD_DTYPE_F64:
    return 8;
  case HERD_DTYPE_F16:
    return 2;
  case HERD_DTYPE_BF16:
    return 2;
  case HERD_DTYPE_I32:
    return 4;
  case HERD_DTYPE_I64:
    return 8;
  case HERD_DTYPE_U8:
    return 1;
  }
  return 0;
}

const char *ckpt_dtype_name(herd_dtype_t dtype)
{
  switch (dtype) {
  case HERD_DTYPE_F32:
    return "f32";
  case HERD_DTYPE_F64:
    return "f64";
  case HERD_DTYPE_F16:
    return "f16";
  case HERD_DTYPE_BF16:
    return "bf16";
  case HERD_DTYPE_I32:
    return "i32";
  case HERD_DTYPE_I64:
    return "i64";
  case HERD_DTYPE_U8:
    return "u8";
  }
  return NULL;
}

bool ckpt_dtype_parse(const char *name, herd_dtype_t *dtype)
{
  static const herd_dtype_t all[] = {
      HERD_DTYPE_F32, HERD_DTYPE_F64, HERD_DTYPE_F16, HERD_DTYPE_BF16,
      HERD_DTYPE_I32, HERD_DTYPE_I64, HERD_DTYPE_U8};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    if (strcmp(name, ckpt_dtype_name(all[i])) == 0) {
      *dtype = all[i];
      return true;
    }
  }
  return false;
}

/* HDF5 has no half or bfloat16 type that h5py and h5dump agree on, so both
 * are stored as their raw 16-bit patterns; the herd_dtype attribute says
 * which. */
hid_t ckpt_dtype_file_type(herd_dtype_t dtype)
{
  switch (dtype) {
  case HERD_DTYPE_F32:
    return H5T_IEEE_F32LE;
  case HERD_DTYPE_F64:
    return H5T_IEEE_F64LE;
  case HERD_DTYPE_F16:
    return H5T_STD_U16LE;
  case HERD_DTYPE_BF16:
    return H5T_STD_U16LE;
  case HERD_DTYPE_I32:
    return H5T_STD_I32LE;
  case HERD_DTYPE_I64:
    return H5T_STD_I64LE;
  case HERD_DTYPE_U8:
    return H5T_STD_U8LE;
  }
  return H5I_INVALID_HID;
}

hid_t ckpt_dtype_mem_type(herd_dtype_t dtype)
{
  switch (dtype) {
  case HERD_DTYPE_F32:
    return H5T_NATIVE_FLOAT;
  case HERD_DTYPE_F64:
    return H5T_NATIVE_DOUBLE;
  case HERD_DTYPE_F16:
    return H5T_NATIVE_UINT16;
  case HERD_DTYPE_BF16:
    return H5T_NATIVE_UINT16;
  case HERD_DTYPE_I32:
    return H5T_NATIVE_INT32;
  case HERD_DTYPE_I64:
    return H5T_NATIVE_INT64;
  case HERD_DTYPE_U8:
    return H5T_NATIVE_UINT8;
  }
  return H5I_INVALID_HID;
}

herd_result_t ckpt_attr_write(hid_t obj, const char *name, hid_t file_type,
                              hid_t mem_type, size_t count, const void *value,
                              const char *path)
{
  herd_result_t rc = HERD_OK;
  hsize_t dims[1] = {count};
  hid_t space = count ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t attr = H5I_INVALID_HID;
  if (space < 0) {
    rc = ckpt_h5_fail(HERD_EIO, path, "creating a dataspace");
    goto out;
  }
  attr = H5Acreate2(obj, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (attr < 0 || H5Awrite(attr, mem_type, value) < 0)
    rc = ckpt_h5_fail(HERD_EIO, path, name);
out:
  if (attr >= 0)
    H5Aclose(attr);
  if (space >= 0)
    H5Sclose(space);
  return rc;
}

herd_result_t ckpt_attr_write_str(hid_t obj, const char *name, const char *text,
                                  const char *path)
{
  herd_result_t rc = HERD_OK;
  hid_t type = H5Tcopy(H5T_C_S1);
  /* Fixed length (+1 for the NUL): no variable-length memory to reclaim
   * on read, and h5py/h5dump show it as a plain string. */
  if (type < 0 || H5Tset_size(type, strlen(text) + 1) < 0 ||
      H5Tset_strpad(type, H5T_STR_NULLTERM) < 0 ||
      H5Tset_cset(type, H5T_CSET_UTF8) < 0) {
    rc = ckpt_h5_fail(HERD_EIO, path, "creating a string type");
    goto out;
  }
  rc = ckpt_attr_write(obj, name, type, type, 0, text, path);
out:
  if (type >= 0)
    H5Tclose(type);
  return rc;
}

/* Opens attribute `name` and its type and space; HERD_EFORMAT when absent. */
static herd_result_t s_attr_open(hid_t obj, const char *name, const char *path,
                                 hid_t *attr, hid_t *type, hid_t *space)
{
  htri_t exists = H5Aexists(obj, name);
  if (exists < 0)
    return ckpt_h5_fail(HERD_EFORMAT, path, name);
  if (exists == 0)
    return herd_error_set(HERD_EFORMAT, "checkpoint '%s': no attribute '%s'",
                          path, name);
  *attr = H5Aopen(obj, name, H5P_DEFAULT);
  if (*attr < 0)
    return ckpt_h5_fail(HERD_EFORMAT, path, name);
  *type = H5Aget_type(*attr);
  *space = H5Aget_space(*attr);
  if (*type < 0 || *space < 0)
    return ckpt_h5_fail(HERD_EFORMAT, path, name);
  return HERD_OK;
}

static void s_attr_close(hid_t attr, hid_t type, hid_t space)
{
  if (space >= 0)
    H5Sclose(space);
  if (type >= 0)
    H5Tclose(type);
  if (attr >= 0)
    H5Aclose(attr);
}

static herd_result_t s_bad_attr(const char *path, const char *name)
{
  return herd_error_set(HERD_EFORMAT,
                        "checkpoint '%s': attribute '%s' has the wrong type "
                        "or shape",
                        path, name);
}

herd_result_t ckpt_attr_read(hid_t obj, const char *name, hid_t mem_type,
                             size_t count, void *out, const char *path)
{
  hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID;
  hid_t space = H5I_INVALID_HID;
  herd_result_t rc = s_attr_open(obj, name, path, &attr, &type, &space);
  if (rc != HERD_OK)
    goto out;
  hssize_t points = H5Sget_simple_extent_npoints(space);
  if (H5Tget_class(type) != H5Tget_class(mem_type) ||
      H5Tget_size(type) != H5Tget_size(mem_type) ||
      points != (hssize_t)(count ? count : 1)) {
    rc = s_bad_attr(path, name);
    goto out;
  }
  if (H5Aread(attr, mem_type, out) < 0)
    rc = ckpt_h5_fail(HERD_EFORMAT, path, name);
out:
  s_attr_close(attr, type, space);
  return rc;
}

herd_result_t ckpt_attr_read_str(hid_t obj, const char *name, char *buf,
                                 size_t cap, const char *path)
{
  hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID;
  hid_t space = H5I_INVALID_HID;
  herd_result_t rc = s_attr_open(obj, name, path, &attr, &type, &space);
  if (rc != HERD_OK)
    goto out;
  size_t size = H5Tget_size(type);
  if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) != 0 ||
      size == 0 || size > cap || H5Sget_simple_extent_npoints(space) != 1) {
    rc = s_bad_attr(path, name);
    goto out;
  }
  memset(buf, 0, cap);
  /* Reading with the file's own type: no conversion, exactly `size` bytes.
   * A shorter string keeps buf[size] as its NUL; a full-size one must bring
   * its own (a damaged file may not). */
  if (H5Aread(attr, type, buf) < 0)
    rc = ckpt_h5_fail(HERD_EFORMAT, path, name);
  else if (buf[cap - 1] != '\0')
    rc = s_bad_attr(path, name);
out:
  s_attr_close(attr, type, space);
  return rc;
}
