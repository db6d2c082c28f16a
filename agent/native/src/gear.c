/*
 * gearScan: FastCDC's inner loop (backup/chunker.ts has the algorithm and owns the state). The
 * loop is a chain of shift, add and table load per byte, which JavaScript ran at about a third of
 * C's speed on the backup's main thread. Bit for bit the JavaScript loop: h is 32 bits, wrapping.
 */
#include <stddef.h>
#include <stdint.h>

#include "check.h"

static napi_status typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type t;
  napi_status s = napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL);
  if (s != napi_ok) return s;
  return t == want ? napi_ok : napi_invalid_arg;
}

/* Hashes buf[i..end) into *h; stops after the first byte where (*h & mask) == 0 (then *cut = 1). */
static size_t scan(const uint32_t *gear, const uint8_t *buf, size_t i, size_t end, uint32_t mask, uint32_t *h, int *cut) {
  uint32_t x = *h;
  for (; i < end; i++) {
    x = (x << 1) + gear[buf[i]];
    if ((x & mask) == 0) {
      *cut = 1;
      i++;
      break;
    }
  }
  *h = x;
  return i;
}

/*
 * gearScan(gear: Uint32Array(256), buf: Uint8Array, pos, endS, endL, maskS, maskL, state: Int32Array(2)):
 * hashes buf[pos..] from h = state[0], with maskS before endS and maskL before endL; returns the
 * index after the byte where (h & mask) == 0 (then state[1] = 1) or endL (state[1] = 0), and
 * leaves h in state[0].
 */
napi_value gear_scan(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8) {
    napi_throw_error(env, NULL, "gearScan: 8 arguments");
    return NULL;
  }
  uint32_t *gear, *state;
  uint8_t *buf;
  size_t ngear, nbuf, nstate;
  int64_t pos, endS, endL;
  uint32_t maskS, maskL;
  CHECK(typed(env, argv[0], napi_uint32_array, (void **)&gear, &ngear));
  CHECK(typed(env, argv[1], napi_uint8_array, (void **)&buf, &nbuf));
  CHECK(napi_get_value_int64(env, argv[2], &pos));
  CHECK(napi_get_value_int64(env, argv[3], &endS));
  CHECK(napi_get_value_int64(env, argv[4], &endL));
  CHECK(napi_get_value_int32(env, argv[5], (int32_t *)&maskS));
  CHECK(napi_get_value_int32(env, argv[6], (int32_t *)&maskL));
  CHECK(typed(env, argv[7], napi_int32_array, (void **)&state, &nstate));
  if (ngear != 256 || nstate < 2 || pos < 0 || pos > endS || endS > endL || (uint64_t)endL > nbuf) {
    napi_throw_range_error(env, NULL, "gearScan: bad table, state or range");
    return NULL;
  }
  uint32_t h = state[0];
  int cut = 0;
  size_t i = scan(gear, buf, (size_t)pos, (size_t)endS, maskS, &h, &cut);
  if (!cut) i = scan(gear, buf, i, (size_t)endL, maskL, &h, &cut);
  state[0] = h;
  state[1] = cut;
  napi_value out;
  CHECK(napi_create_int64(env, (int64_t)i, &out));
  return out;
}
