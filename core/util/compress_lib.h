/* SPDX-License-Identifier: Apache-2.0 */
/* liblzma (xz) and libzstd loaded on demand: only a tar compressed with xz or zstd maps them, so
 * `molt commit`, `status`, `version` and the install of a gzip or uncompressed artifact do not
 * pay for their relocations and page faults at start (docs/performance.md). The first user
 * dlopens the library once and gets a table of the functions molt and libarchive call, as
 * util/crypto_lib.h does for libcrypto.
 *
 * libarchive (linked statically, MOLT_LIBARCHIVE=static) calls liblzma and libzstd by name: its
 * calls land in compress_lib.c's functions of the same names (hidden, never exported), which
 * forward to the table. A program links them with libmolt-core (any program reading or writing
 * an artifact does: artifact/tar_in.c and artifact/writer.c load the table before they add a
 * filter), so the linker, which resolves libarchive.a's references to them first, never needs
 * liblzma.so or libzstd.so (--as-needed drops them; test_footprint checks molt and
 * molt-artifact). With libarchive shared, libarchive.so maps both itself. */
#ifndef MOLT_UTIL_COMPRESS_LIB_H
#define MOLT_UTIL_COMPRESS_LIB_H

#include <lzma.h>
#include <zstd.h>
#include "util/err.h"

/* The sonames loaded, found by the dynamic loader's rules (no environment variable picks them). */
#define MOLT_LZMA_SONAME "liblzma.so.5"
#define MOLT_ZSTD_SONAME "libzstd.so.1"

/* Every liblzma function molt or libarchive calls (X(name)); a new call adds its name here (and,
 * for libarchive, a forwarder in compress_lib.c). */
#define MOLT_LZMA_FUNCTIONS(X)                                                                 \
    X(lzma_alone_decoder) X(lzma_alone_encoder) X(lzma_code) X(lzma_cputhreads) X(lzma_crc32)  \
    X(lzma_end) X(lzma_lzma_preset) X(lzma_memusage) X(lzma_properties_decode)                 \
    X(lzma_raw_decoder) X(lzma_raw_encoder) X(lzma_stream_decoder) X(lzma_stream_encoder)      \
    X(lzma_stream_encoder_mt)

/* The same for libzstd (ZSTD_CCtx_refPrefix & co.: molt-artifact's rootfs delta). */
#define MOLT_ZSTD_FUNCTIONS(X)                                                                 \
    X(ZSTD_CCtx_refPrefix) X(ZSTD_CCtx_setParameter) X(ZSTD_CCtx_setPledgedSrcSize)            \
    X(ZSTD_CStreamOutSize) X(ZSTD_DStreamOutSize) X(ZSTD_compress2) X(ZSTD_compressBound)      \
    X(ZSTD_compressStream) X(ZSTD_createCCtx) X(ZSTD_createCStream) X(ZSTD_createDStream)      \
    X(ZSTD_decompressStream) X(ZSTD_endStream) X(ZSTD_freeCCtx) X(ZSTD_freeCStream)            \
    X(ZSTD_freeDStream) X(ZSTD_getErrorName) X(ZSTD_initCStream) X(ZSTD_initDStream)           \
    X(ZSTD_isError) X(ZSTD_maxCLevel) X(ZSTD_minCLevel) X(ZSTD_versionNumber)

/* The functions, resolved from the loaded library: each field has the name and the exact type
 * of the function its header declares (z->ZSTD_isError(r) calls ZSTD_isError). */
#define MOLT_COMPRESS_FIELD(name) __typeof__(name) *name;
typedef struct molt_lzma_lib {
    MOLT_LZMA_FUNCTIONS(MOLT_COMPRESS_FIELD)
} molt_lzma_lib;
typedef struct molt_zstd_lib {
    MOLT_ZSTD_FUNCTIONS(MOLT_COMPRESS_FIELD)
} molt_zstd_lib;
#undef MOLT_COMPRESS_FIELD

/* The loaded liblzma / libzstd. The first call loads it (dlopen RTLD_NOW|RTLD_LOCAL, once per
 * process, thread-safe); later calls return the same table, or the same error: MOLT_EUNSUPPORTED
 * when the library cannot be loaded or lacks a function, the message naming the compression,
 * the library and what dlopen/dlsym said ("xz compression needs liblzma, which cannot be loaded
 * (liblzma.so.5): ...; install liblzma (Debian: liblzma5)"). ret may be NULL (only load). The
 * table lives until exit. */
int molt_lzma_get(const molt_lzma_lib **ret, molt_err *err);
int molt_zstd_get(const molt_zstd_lib **ret, molt_err *err);

/* For tests (the missing-library error): load these sonames instead (NULL: the default again).
 * Only the first load of the process reads them; call it before, from one thread. */
void molt_compress_lib_set_sonames(const char *lzma_soname, const char *zstd_soname);

#endif
