/*
 * fsx: extended attributes, nanosecond timestamps, mknod and rename-without-replace for medvault's backup and restore
 * (and, in gear.c, FastCDC's inner loop; in seal.c, AES-256-GCM into a given buffer; in scan.c, a
 * folder's entries with their lstat, for the backup walk; in direct.c, writes that bypass the page cache).
 * Each function takes its path as a Buffer (raw bytes: names need not be UTF-8) or a string,
 * never follows a final symlink, and throws an Error with code/errno/syscall on failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include "check.h"
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

static const char *errno_name(int e) {
  switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOTSUP: return "ENOTSUP";
    case ENODATA: return "ENODATA";
    case ERANGE: return "ERANGE";
    case EEXIST: return "EEXIST";
    case ENOSPC: return "ENOSPC";
    case E2BIG: return "E2BIG";
    case EROFS: return "EROFS";
    case EINVAL: return "EINVAL";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTDIR: return "ENOTDIR";
    case EIO: return "EIO";
    case EDQUOT: return "EDQUOT";
    case EAGAIN: return "EAGAIN";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENOSYS: return "ENOSYS";
    case EBADF: return "EBADF";
    case ENXIO: return "ENXIO";
    case ENODEV: return "ENODEV";
    case ESTALE: return "ESTALE";
    case EFBIG: return "EFBIG";
    case EBUSY: return "EBUSY";
    case EINTR: return "EINTR";
    case ENOMEM: return "ENOMEM";
    default: return "EUNKNOWN";
  }
}

/* An Error like Node's for errno `e` of `syscall`: message, code, errno, syscall (scan.c rejects with it too). */
napi_value fsx_errno_error(napi_env env, const char *syscall, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (%s)", errno_name(e), strerror(e), syscall);
  napi_value text, err, v;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, NULL, text, &err);
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "code", v);
  napi_create_int32(env, -e, &v);
  napi_set_named_property(env, err, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, err, "syscall", v);
  return err;
}

static napi_value throw_errno(napi_env env, const char *syscall, int e) {
  napi_throw(env, fsx_errno_error(env, syscall, e));
  return NULL;
}

/* A NUL-terminated copy of a Buffer or string argument; free() it. NULL (and a thrown error) on failure. */
char *fsx_path_arg(napi_env env, napi_value v);
#define path_arg fsx_path_arg
char *fsx_path_arg(napi_env env, napi_value v) {
  bool is_buffer = false;
  napi_is_buffer(env, v, &is_buffer);
  if (is_buffer) {
    void *data;
    size_t len;
    if (napi_get_buffer_info(env, v, &data, &len) != napi_ok) return NULL;
    if (memchr(data, 0, len)) {
      napi_throw_error(env, "EINVAL", "fsx: path contains NUL");
      return NULL;
    }
    char *p = malloc(len + 1);
    memcpy(p, data, len);
    p[len] = 0;
    return p;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "fsx: path must be a Buffer or a string");
    return NULL;
  }
  char *p = malloc(len + 1);
  napi_get_value_string_utf8(env, v, p, len + 1, &len);
  return p;
}

static napi_value get_xattrs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = path_arg(env, argv[0]);
  if (!path) return NULL;
  ssize_t size = llistxattr(path, NULL, 0);
  if (size < 0) {
    int e = errno;
    free(path);
    if (e == ENOTSUP) { napi_create_array(env, &result); return result; }
    return throw_errno(env, "llistxattr", e);
  }
  char *names = malloc(size > 0 ? size : 1);
  size = llistxattr(path, names, size);
  if (size < 0) { int e = errno; free(names); free(path); return throw_errno(env, "llistxattr", e); }
  napi_create_array(env, &result);
  uint32_t i = 0;
  for (char *n = names; n < names + size; n += strlen(n) + 1) {
    ssize_t vlen = lgetxattr(path, n, NULL, 0);
    if (vlen < 0) { if (errno == ENODATA) continue; int e = errno; free(names); free(path); return throw_errno(env, "lgetxattr", e); }
    void *val;
    napi_value buf, name, pair;
    napi_create_buffer(env, vlen, &val, &buf);
    if (vlen > 0 && lgetxattr(path, n, val, vlen) < 0) { int e = errno; free(names); free(path); return throw_errno(env, "lgetxattr", e); }
    napi_create_string_utf8(env, n, NAPI_AUTO_LENGTH, &name);
    napi_create_array_with_length(env, 2, &pair);
    napi_set_element(env, pair, 0, name);
    napi_set_element(env, pair, 1, buf);
    napi_set_element(env, result, i++, pair);
  }
  free(names);
  free(path);
  return result;
}

static napi_value set_xattr(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[256];
  size_t nlen;
  void *data;
  size_t len;
  CHECK(napi_get_value_string_utf8(env, argv[1], name, sizeof name, &nlen));
  CHECK(napi_get_buffer_info(env, argv[2], &data, &len));
  char *path = path_arg(env, argv[0]);
  if (!path) return NULL;
  int r = lsetxattr(path, name, data, len, 0);
  int e = errno;
  free(path);
  if (r < 0) return throw_errno(env, "lsetxattr", e);
  return NULL;
}

static int bigint_arg(napi_env env, napi_value v, int64_t *out) {
  bool lossless;
  return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok && lossless ? 0 : -1;
}

static napi_value set_times(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t at, mt;
  if (bigint_arg(env, argv[1], &at) || bigint_arg(env, argv[2], &mt)) {
    napi_throw_type_error(env, NULL, "fsx.setTimes: times must be bigint nanoseconds");
    return NULL;
  }
  struct timespec ts[2] = {{at / 1000000000, at % 1000000000}, {mt / 1000000000, mt % 1000000000}};
  char *path = path_arg(env, argv[0]);
  if (!path) return NULL;
  int r = utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
  int e = errno;
  free(path);
  if (r < 0) return throw_errno(env, "utimensat", e);
  return NULL;
}

static napi_value do_mknod(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t mode;
  int64_t dev;
  CHECK(napi_get_value_uint32(env, argv[1], &mode));
  if (bigint_arg(env, argv[2], &dev)) {
    napi_throw_type_error(env, NULL, "fsx.mknod: dev must be a bigint");
    return NULL;
  }
  char *path = path_arg(env, argv[0]);
  if (!path) return NULL;
  int r = mknod(path, (mode_t)mode, (dev_t)dev);
  int e = errno;
  free(path);
  if (r < 0) return throw_errno(env, "mknod", e);
  return NULL;
}

/* Renames without replacing (renameat2 RENAME_NOREPLACE): EEXIST when `to` exists; EINVAL where the file system lacks it. */
static napi_value rename_noreplace(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *from = path_arg(env, argv[0]);
  if (!from) return NULL;
  char *to = path_arg(env, argv[1]);
  if (!to) {
    free(from);
    return NULL;
  }
  long r = syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 1 /* RENAME_NOREPLACE */);
  int e = errno;
  free(from);
  free(to);
  if (r < 0) return throw_errno(env, "renameat2", e);
  return NULL;
}

/*
 * syncfs(fd) -> Promise: writes back the whole file system `fd` is on, in the thread pool, and
 * rejects (EIO, ENOSPC, ...) on any writeback error on it since `fd` was opened, also those of the
 * kernel's own flushes meanwhile (the superblock's errseq is sampled when the fd is opened).
 */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  int fd;
  int err;
} syncfs_job;

static void syncfs_run(napi_env env, void *data) {
  (void)env;
  syncfs_job *j = data;
  j->err = syncfs(j->fd) < 0 ? errno : 0;
}

/* Settles a promise of async work: resolved (undefined) when `err` is 0, else rejected with `syscall`'s errno error (direct.c too). */
void fsx_settle(napi_env env, napi_deferred deferred, const char *syscall, int err) {
  napi_value v;
  if (err == 0) {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, deferred, v);
  } else {
    napi_reject_deferred(env, deferred, fsx_errno_error(env, syscall, err));
  }
}

static void syncfs_done(napi_env env, napi_status status, void *data) {
  (void)status;
  syncfs_job *j = data;
  fsx_settle(env, j->deferred, "syncfs", j->err);
  napi_delete_async_work(env, j->work);
  free(j);
}

static napi_value do_syncfs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise, name;
  int32_t fd = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) { napi_throw_type_error(env, NULL, "fsx.syncfs(fd)"); return NULL; }
  syncfs_job *j = calloc(1, sizeof *j);
  if (!j) return throw_errno(env, "syncfs", ENOMEM);
  j->fd = fd;
  CHECK(napi_create_promise(env, &j->deferred, &promise));
  napi_create_string_utf8(env, "fsx.syncfs", NAPI_AUTO_LENGTH, &name);
  CHECK(napi_create_async_work(env, NULL, name, syncfs_run, syncfs_done, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return promise;
}

/*
 * Unix datagrams for systemd's notification protocol (sd_notify(3)), which Node cannot send.
 * `path` is $NOTIFY_SOCKET: a file system path, or "@name" for the abstract namespace.
 */
static int unix_address(const char *path, struct sockaddr_un *sa, socklen_t *len) {
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof sa->sun_path) return -1;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  memcpy(sa->sun_path, path, n);
  if (path[0] == '@') sa->sun_path[0] = '\0';
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  return 0;
}

static char *string_arg(napi_env env, napi_value v) {
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return NULL;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  napi_get_value_string_utf8(env, v, s, n + 1, &n);
  return s;
}

/*
 * notify(socketPath, message): one datagram, sent whole or an error thrown. Never blocks: a full
 * receiver queue is EAGAIN (a daemon must not hang on its service manager).
 */
static napi_value notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "fsx.notify(socketPath, message)"); return NULL; }
  char *path = string_arg(env, argv[0]);
  char *msg = string_arg(env, argv[1]);
  struct sockaddr_un sa;
  socklen_t len;
  if (!path || !msg || unix_address(path, &sa, &len) < 0) {
    free(path); free(msg);
    napi_throw_type_error(env, NULL, "fsx.notify: socket path must be 1-107 bytes");
    return NULL;
  }
  int e = 0;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) e = errno;
  else {
    ssize_t r = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, len);
    if (r < 0) e = errno;
    close(fd);
  }
  free(path); free(msg);
  if (e) return throw_errno(env, "sendto", e);
  return NULL;
}

/* bindDatagram(path): a bound AF_UNIX datagram socket's fd (tests stand in for systemd with it). */
static napi_value bind_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = argc ? string_arg(env, argv[0]) : NULL;
  struct sockaddr_un sa;
  socklen_t len;
  if (!path || unix_address(path, &sa, &len) < 0) { free(path); napi_throw_type_error(env, NULL, "fsx.bindDatagram(path)"); return NULL; }
  free(path);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&sa, len) < 0) { int e = errno; close(fd); return throw_errno(env, "bind", e); }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

/* recvDatagram(fd, timeoutMs): the next datagram as a string, or null after timeoutMs. */
static napi_value recv_datagram(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd = -1, timeout = 0;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) { napi_throw_type_error(env, NULL, "fsx.recvDatagram(fd, timeoutMs)"); return NULL; }
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  CHECK(napi_get_value_int32(env, argv[1], &timeout));
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int r = poll(&p, 1, timeout);
  if (r < 0) return throw_errno(env, "poll", errno);
  napi_value out;
  if (r == 0) { napi_get_null(env, &out); return out; }
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  if (n < 0) return throw_errno(env, "recv", errno);
  napi_create_string_utf8(env, buf, (size_t)n, &out);
  return out;
}

/* closeFd(fd) */
static napi_value close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return NULL;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (close(fd) < 0) return throw_errno(env, "close", errno);
  return NULL;
}

int fsx_direct_busy(const void *p, size_t len); /* direct.c */

/*
 * release(arrayBuffer): frees its memory now (napi_detach_arraybuffer: every view of it is empty
 * from then on) instead of whenever the garbage collector of the thread holding it runs next.
 * One a writeDirect is still reading (direct.c) is left to the collector: freed under the write,
 * its memory was read after free.
 */
static napi_value release(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) return NULL;
  void *data;
  size_t len;
  if (napi_get_arraybuffer_info(env, argv[0], &data, &len) == napi_ok && fsx_direct_busy(data, len)) return NULL; /* being written (direct.c): left to the collector */
  CHECK(napi_detach_arraybuffer(env, argv[0]));
  return NULL;
}

napi_value gear_scan(napi_env env, napi_callback_info info); /* gear.c */
napi_value seal_into(napi_env env, napi_callback_info info); /* seal.c */
napi_value open_in_place(napi_env env, napi_callback_info info); /* seal.c */
napi_value scan_dir(napi_env env, napi_callback_info info);  /* scan.c */
napi_value fsx_write_direct(napi_env env, napi_callback_info info); /* direct.c */
napi_value fsx_align_gap(napi_env env, napi_callback_info info);    /* direct.c */

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"getXattrs", NULL, get_xattrs, NULL, NULL, NULL, napi_default, NULL},
    {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
    {"setTimes", NULL, set_times, NULL, NULL, NULL, napi_default, NULL},
    {"mknod", NULL, do_mknod, NULL, NULL, NULL, napi_default, NULL},
    {"renameNoReplace", NULL, rename_noreplace, NULL, NULL, NULL, napi_default, NULL},
    {"syncfs", NULL, do_syncfs, NULL, NULL, NULL, napi_default, NULL},
    {"notify", NULL, notify, NULL, NULL, NULL, napi_default, NULL},
    {"bindDatagram", NULL, bind_datagram, NULL, NULL, NULL, napi_default, NULL},
    {"recvDatagram", NULL, recv_datagram, NULL, NULL, NULL, napi_default, NULL},
    {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_default, NULL},
    {"gearScan", NULL, gear_scan, NULL, NULL, NULL, napi_default, NULL},
    {"sealInto", NULL, seal_into, NULL, NULL, NULL, napi_default, NULL},
    {"openInPlace", NULL, open_in_place, NULL, NULL, NULL, napi_default, NULL},
    {"scanDir", NULL, scan_dir, NULL, NULL, NULL, napi_default, NULL},
    {"release", NULL, release, NULL, NULL, NULL, napi_default, NULL},
    {"writeDirect", NULL, fsx_write_direct, NULL, NULL, NULL, napi_default, NULL},
    {"alignGap", NULL, fsx_align_gap, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
