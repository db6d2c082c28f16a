/*
 * scanDir(path) -> Promise<{ names, nums, text }>: one folder's entries with their lstat, read in
 * the thread pool (open O_DIRECTORY|O_NOFOLLOW, readdir, fstatat AT_SYMLINK_NOFOLLOW per entry),
 * for the backup walk: 22,000 lstatSync calls cost its main thread ~130-170 ms, mostly Node's own
 * work around the system call (path conversion, BigIntStats with Date objects).
 *   names: Buffer, every name (raw bytes, never "." or "..") followed by a NUL, in readdir order
 *   nums:  Float64Array, 6 per entry: errno of its fstatat (0 when it worked), st_mode, uid, gid, size, nlink
 *   text:  latin1 string, one line per entry: "mtimeNs ctimeNs ino dev rdev" in decimal, the values
 *          Node's lstat(…, {bigint: true}) gives (mtimeNs, ctimeNs, ino, dev, rdev); "0 0 0 0 0" after an error
 * The folder itself failing to open or read rejects with an Error like Node's (code, errno, syscall).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include "check.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

napi_value fsx_errno_error(napi_env env, const char *syscall, int e); /* fsx.c */
char *fsx_path_arg(napi_env env, napi_value v);                       /* fsx.c */

typedef struct {
  char *p;
  size_t len, cap;
  int failed;
} growbuf;

static void put(growbuf *b, const void *data, size_t n) {
  if (b->failed) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) { b->failed = 1; return; }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

/* sec * 1e9 + nsec in decimal, exactly (as Node's BigInt mtimeNs), negative times included. */
static int ns_text(char *out, int64_t sec, int64_t nsec) {
  __int128 v = (__int128)sec * 1000000000 + nsec;
  char tmp[48];
  int n = 0, neg = v < 0;
  unsigned __int128 u = neg ? (unsigned __int128)(-v) : (unsigned __int128)v;
  do { tmp[n++] = (char)('0' + (int)(u % 10)); u /= 10; } while (u);
  int k = 0;
  if (neg) out[k++] = '-';
  while (n) out[k++] = tmp[--n];
  return k;
}

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  int err;
  const char *syscall;
  growbuf names, nums, text;
  size_t count;
} scan_job;

static void scan_run(napi_env env, void *data) {
  (void)env;
  scan_job *j = data;
  int fd = open(j->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) { j->err = errno; j->syscall = "scandir"; return; }
  DIR *d = fdopendir(fd);
  if (!d) { j->err = errno; j->syscall = "scandir"; close(fd); return; }
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno) { j->err = errno; j->syscall = "scandir"; }
      break;
    }
    if (e->d_name[0] == '.' && (e->d_name[1] == 0 || (e->d_name[1] == '.' && e->d_name[2] == 0))) continue;
    struct stat st;
    double nums[6] = {0};
    char line[160];
    int n;
    if (fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      nums[0] = errno;
      n = snprintf(line, sizeof line, "0 0 0 0 0\n");
    } else {
      nums[1] = st.st_mode;
      nums[2] = st.st_uid;
      nums[3] = st.st_gid;
      nums[4] = (double)st.st_size;
      nums[5] = (double)st.st_nlink;
      n = ns_text(line, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
      line[n++] = ' ';
      n += ns_text(line + n, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
      n += snprintf(line + n, sizeof line - n, " %llu %llu %llu\n", (unsigned long long)st.st_ino, (unsigned long long)st.st_dev, (unsigned long long)st.st_rdev);
    }
    put(&j->names, e->d_name, strlen(e->d_name) + 1);
    put(&j->nums, nums, sizeof nums);
    put(&j->text, line, (size_t)n);
    j->count++;
  }
  closedir(d);
  if (!j->err && (j->names.failed || j->nums.failed || j->text.failed)) { j->err = ENOMEM; j->syscall = "scandir"; }
}

static void scan_done(napi_env env, napi_status status, void *data) {
  (void)status;
  scan_job *j = data;
  napi_value v, names, nums, text, ab;
  if (j->err) {
    v = fsx_errno_error(env, j->syscall, j->err);
    napi_reject_deferred(env, j->deferred, v);
  } else {
    void *p;
    napi_create_buffer_copy(env, j->names.len, j->names.len ? j->names.p : "", NULL, &names);
    napi_create_arraybuffer(env, j->nums.len, &p, &ab);
    if (j->nums.len) memcpy(p, j->nums.p, j->nums.len);
    napi_create_typedarray(env, napi_float64_array, j->count * 6, ab, 0, &nums);
    napi_create_string_latin1(env, j->text.len ? j->text.p : "", j->text.len, &text);
    napi_create_object(env, &v);
    napi_set_named_property(env, v, "names", names);
    napi_set_named_property(env, v, "nums", nums);
    napi_set_named_property(env, v, "text", text);
    napi_resolve_deferred(env, j->deferred, v);
  }
  napi_delete_async_work(env, j->work);
  free(j->names.p);
  free(j->nums.p);
  free(j->text.p);
  free(j->path);
  free(j);
}

napi_value scan_dir(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise, name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) { napi_throw_type_error(env, NULL, "fsx.scanDir(path)"); return NULL; }
  char *path = fsx_path_arg(env, argv[0]);
  if (!path) return NULL;
  scan_job *j = calloc(1, sizeof *j);
  if (!j) { free(path); napi_throw(env, fsx_errno_error(env, "scandir", ENOMEM)); return NULL; }
  j->path = path;
  CHECK(napi_create_promise(env, &j->deferred, &promise));
  napi_create_string_utf8(env, "fsx.scanDir", NAPI_AUTO_LENGTH, &name);
  CHECK(napi_create_async_work(env, NULL, name, scan_run, scan_done, j, &j->work));
  CHECK(napi_queue_async_work(env, j->work));
  return promise;
}
