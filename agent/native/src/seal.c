/*
 * sealInto: AES-256-GCM of one plaintext straight into a caller's buffer (ciphertext, then the
 * 16-byte tag), with OpenSSL's EVP calls that node itself exports. Node's Cipher returns a new
 * buffer per update, so a pack's blobs were each sealed into a buffer of their own and copied
 * into the pack: 1.5 GB of short-lived buffers (and their garbage collections) for the bench
 * data set's initial backup. crypto/aead.ts has the contract.
 */
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

#define TAG_BYTES 16

static int bytes(napi_env env, napi_value v, uint8_t **data, size_t *len) {
  napi_typedarray_type t;
  if (napi_get_typedarray_info(env, v, &t, len, (void **)data, NULL, NULL) != napi_ok || t != napi_uint8_array) return 0;
  return 1;
}

/* The optional additional data argv[i]: absent or undefined leaves *aad NULL; returns 0 for anything but a Uint8Array. */
static int optional_aad(napi_env env, size_t argc, napi_value *argv, size_t i, uint8_t **aad, size_t *naad) {
  napi_valuetype t = napi_undefined;
  if (argc > i && napi_typeof(env, argv[i], &t) != napi_ok) return 0;
  return t == napi_undefined || bytes(env, argv[i], aad, naad);
}

/* sealInto(key: Uint8Array(32), iv: Uint8Array(12), plain: Uint8Array, out: Uint8Array, offset, aad?: Uint8Array) */
napi_value seal_into(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *key, *iv, *plain, *out, *aad = NULL;
  size_t nkey, niv, nplain, nout, naad = 0;
  int64_t offset;
  if (argc < 5 || !bytes(env, argv[0], &key, &nkey) || !bytes(env, argv[1], &iv, &niv) || !bytes(env, argv[2], &plain, &nplain) ||
      !bytes(env, argv[3], &out, &nout) || napi_get_value_int64(env, argv[4], &offset) != napi_ok) {
    napi_throw_type_error(env, NULL, "sealInto: invalid arguments");
    return NULL;
  }
  if (!optional_aad(env, argc, argv, 5, &aad, &naad)) {
    napi_throw_type_error(env, NULL, "sealInto: aad must be a Uint8Array");
    return NULL;
  }
  if (nkey != 32 || niv != 12 || nplain > INT32_MAX - TAG_BYTES || naad > INT32_MAX || offset < 0 || (uint64_t)offset > nout || nout - (size_t)offset < nplain + TAG_BYTES) {
    napi_throw_range_error(env, NULL, "sealInto: bad key, nonce or output range");
    return NULL;
  }
  uint8_t *dst = out + offset;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int n = 0, ok = ctx != NULL && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
                  (aad == NULL || EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)naad) == 1) &&
                  EVP_EncryptUpdate(ctx, dst, &n, plain, (int)nplain) == 1 && (size_t)n == nplain &&
                  EVP_EncryptFinal_ex(ctx, dst + n, &n) == 1 && n == 0 &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, dst + nplain) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) {
    napi_throw_error(env, NULL, "sealInto: AES-256-GCM failed");
    return NULL;
  }
  return NULL;
}

/*
 * openInPlace(key: Uint8Array(32), iv: Uint8Array(12), sealed: Uint8Array, aad?: Uint8Array): boolean.
 * Decrypts ciphertext || tag where it lies (the plaintext is sealed[0..length - 16)) and checks the
 * tag: true when it authenticates. On false the bytes are unauthenticated and MUST NOT be used.
 * Restore reads each chunk into a buffer of its own thread and opens it there: Node's Decipher
 * returns a new buffer per call, and a thread's garbage of those grew its RSS by ~60 MiB.
 */
napi_value open_in_place(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *key, *iv, *sealed, *aad = NULL;
  size_t nkey, niv, nsealed, naad = 0;
  if (argc < 3 || !bytes(env, argv[0], &key, &nkey) || !bytes(env, argv[1], &iv, &niv) || !bytes(env, argv[2], &sealed, &nsealed)) {
    napi_throw_type_error(env, NULL, "openInPlace: invalid arguments");
    return NULL;
  }
  if (!optional_aad(env, argc, argv, 3, &aad, &naad)) {
    napi_throw_type_error(env, NULL, "openInPlace: aad must be a Uint8Array");
    return NULL;
  }
  if (nkey != 32 || niv != 12 || nsealed < TAG_BYTES || nsealed > INT32_MAX || naad > INT32_MAX) {
    napi_throw_range_error(env, NULL, "openInPlace: bad key, nonce or length");
    return NULL;
  }
  size_t nplain = nsealed - TAG_BYTES;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int n = 0, ok = ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) == 1 &&
                  (aad == NULL || EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)naad) == 1) &&
                  EVP_DecryptUpdate(ctx, sealed, &n, sealed, (int)nplain) == 1 && (size_t)n == nplain &&
                  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, sealed + nplain) == 1 &&
                  EVP_DecryptFinal_ex(ctx, sealed + nplain, &n) == 1 && n == 0;
  EVP_CIPHER_CTX_free(ctx);
  napi_value result;
  CHECK(napi_get_boolean(env, ok, &result));
  return result;
}
