/*
 * writeDirect(fd, buf, position) -> Promise<void>: writes `buf` at `position` of a file opened with
 * O_DIRECT, in the thread pool. The bytes go straight to the device: no page-cache copy and no
 * writeback later. A `buf` at a DIRECT_ALIGN boundary (fsx alignGap: the crypto pool seals packs
 * so) is written from where it is, but for its last partial block; any other is copied through an
 * aligned bounce buffer first (that copy was ~2% of a backup's CPU). On this VM 1.5 GB of 8 MiB packs cost 0.9-3.5 s of
 * kernel CPU written through the page cache (then fdatasync), ~0.06 s with O_DIRECT.
 *
 * `position` MUST be a multiple of DIRECT_ALIGN. A last partial block is written padded with zeros
 * and the file is then truncated to position + length, so the file holds exactly `buf`. Errors
 * reject with code/errno/syscall like Node's (EINVAL: the file system refuses O_DIRECT here; the
 * caller writes through the page cache instead).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include "check.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

napi_value fsx_errno_error(napi_env env, const char *syscall, int e);
void fsx_settle(napi_env env, napi_deferred deferred, const char *syscall, int err); /* fsx.c */

/* Block size every O_DIRECT buffer address, length and file offset is aligned to (4 KiB covers 512e and 4Kn disks). */
#define DIRECT_ALIGN 4096
/* The bounce buffer: each write system call moves this much. */
#define BOUNCE (1 << 20)

typedef struct direct_job {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref keep; /* the Buffer, alive until the write ends */
  const unsigned char *data;
  size_t len;
  int fd;
  off_t pos;
  int err;
  const char *syscall;
  struct direct_job *next; /* in `writing` */
} direct_job;

/*
 * The jobs whose buffers the thread pool is reading. A reference keeps a Buffer object alive, not
 * its memory: release() (fsx.c) detaching its ArrayBuffer meanwhile freed the memory under the
 * write (a segfault, or other bytes in the pack), so release leaves these to the collector. Any
 * thread may call release: a mutex.
 */
static pthread_mutex_t writing_lock = PTHREAD_MUTEX_INITIALIZER;
static direct_job *writing;

/* Whether a write in flight reads any of the `len` bytes at `p`. */
int fsx_direct_busy(const void *p, size_t len) {
  const unsigned char *a = p;
  int busy = 0;
  pthread_mutex_lock(&writing_lock);
  for (direct_job *j = writing; j && !busy; j = j->next) busy = a < j->data + j->len && j->data < a + len;
  pthread_mutex_unlock(&writing_lock);
  return busy;
}

/* Writes the `n` bytes at `p` (aligned, n a multiple of DIRECT_ALIGN) at `pos`; 0 or an errno. */
static int write_all(int fd, const unsigned char *p, size_t n, off_t pos) {
  for (size_t w = 0; w < n;) {
    ssize_t r = pwrite(fd, p + w, n - w, pos + (off_t)w);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r < 0 ? errno : EIO;
    w += (size_t)r;
  }
  return 0;
}

static void direct_run(napi_env env, void *arg) {
  (void)env;
  direct_job *j = arg;
  size_t done = 0;
  if ((uintptr_t)j->data % DIRECT_ALIGN == 0) { /* in place, all but a last partial block */
    done = j->len / DIRECT_ALIGN * DIRECT_ALIGN;
    if ((j->err = write_all(j->fd, j->data, done, j->pos)) != 0) {
      j->syscall = "pwrite";
      return;
    }
  }
  if (done < j->len) {
    size_t size = j->len - done < BOUNCE ? (j->len - done + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN : BOUNCE;
    unsigned char *bounce;
    if (posix_memalign((void **)&bounce, DIRECT_ALIGN, size) != 0) {
      j->err = ENOMEM, j->syscall = "posix_memalign";
      return;
    }
    while (done < j->len && j->err == 0) {
      size_t n = j->len - done < size ? j->len - done : size;
      size_t padded = (n + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
      memcpy(bounce, j->data + done, n);
      memset(bounce + n, 0, padded - n);
      if ((j->err = write_all(j->fd, bounce, padded, j->pos + (off_t)done)) != 0) j->syscall = "pwrite";
      done += n;
    }
    free(bounce);
    if (j->err != 0) return;
  }
  if (j->len % DIRECT_ALIGN != 0 && ftruncate(j->fd, j->pos + (off_t)j->len) < 0) j->err = errno, j->syscall = "ftruncate";
}

static void direct_done(napi_env env, napi_status status, void *arg) {
  (void)status;
  direct_job *j = arg;
  pthread_mutex_lock(&writing_lock);
  direct_job **at = &writing;
  while (*at != j) at = &(*at)->next;
  *at = j->next;
  pthread_mutex_unlock(&writing_lock);
  fsx_settle(env, j->deferred, j->syscall, j->err);
  napi_delete_reference(env, j->keep);
  napi_delete_async_work(env, j->work);
  free(j);
}

/* alignGap(arrayBuffer) -> bytes from its start to its first DIRECT_ALIGN boundary (0 to 4095). */
napi_value fsx_align_gap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  void *data;
  size_t len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_arraybuffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "fsx.alignGap(arrayBuffer)");
    return NULL;
  }
  CHECK(napi_create_uint32(env, (uint32_t)((DIRECT_ALIGN - (uintptr_t)data % DIRECT_ALIGN) % DIRECT_ALIGN), &out));
  return out;
}

napi_value fsx_write_direct(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], promise, name;
  int32_t fd;
  double at; /* not napi_get_value_int64: it truncates 4096.5 to 4096 */
  void *data;
  size_t len;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok ||
      napi_get_value_double(env, argv[2], &at) != napi_ok || !(at >= 0 && at <= 9007199254740991.0) || at != (double)(int64_t)at ||
      (int64_t)at % DIRECT_ALIGN != 0) {
    napi_throw_type_error(env, NULL, "fsx.writeDirect(fd, buffer, position aligned to 4096)");
    return NULL;
  }
  direct_job *j = calloc(1, sizeof *j);
  if (!j) {
    napi_throw(env, fsx_errno_error(env, "writeDirect", ENOMEM));
    return NULL;
  }
  j->fd = fd, j->data = data, j->len = len, j->pos = (off_t)at;
  CHECK(napi_create_reference(env, argv[1], 1, &j->keep));
  CHECK(napi_create_promise(env, &j->deferred, &promise));
  napi_create_string_utf8(env, "fsx.writeDirect", NAPI_AUTO_LENGTH, &name);
  CHECK(napi_create_async_work(env, NULL, name, direct_run, direct_done, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  /* listed once queued (direct_done, which unlists it, runs later on this thread) */
  pthread_mutex_lock(&writing_lock);
  j->next = writing, writing = j;
  pthread_mutex_unlock(&writing_lock);
  return promise;
}
