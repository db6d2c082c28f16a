/* CHECK: returns from an N-API callback with a thrown Error when a call into N-API fails (fsx.c, gear.c). */
#ifndef FSX_CHECK_H
#define FSX_CHECK_H
#include <node_api.h>

#define CHECK(call)                                                                  \
  do {                                                                               \
    if ((call) != napi_ok) {                                                         \
      napi_throw_error(env, NULL, "fsx: invalid arguments");                         \
      return NULL;                                                                   \
    }                                                                                \
  } while (0)

#endif
