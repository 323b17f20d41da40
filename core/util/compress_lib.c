/* SPDX-License-Identifier: Apache-2.0 */
/* liblzma and libzstd loaded on demand (compress_lib.h): dlopen once, resolve the table; and
 * the functions libarchive.a calls, under their own names, forwarding to it. */

/* Those functions replace the libraries' for this program only: hidden, so they never enter its
 * dynamic symbol table (where a libarchive.so or the loaded library itself would bind to them).
 * zstd.h marks its functions visible unless told otherwise. */
#define ZSTDLIB_VISIBLE __attribute__((visibility("hidden")))
#pragma GCC visibility push(hidden)
#include <lzma.h>
#include <zstd.h>
#pragma GCC visibility pop

#include "util/compress_lib.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/dl_lib.h"

/* One library: what to load, and the outcome. */
typedef struct lazy {
    pthread_once_t once;
    const char *soname;
    const molt_dl_fn *fns;
    size_t n;
    void *table;            /* returned only once loaded */
    const molt_dl_text text;
    molt_err err;           /* code 0 once loaded */
} lazy;

static void load(lazy *l)
{
    void *dl = NULL;
    molt_dl_lib_load(l->soname, l->fns, l->n, l->table, &l->text, &dl, &l->err);
}

static int get(lazy *l, void (*load_once)(void), molt_err *err)
{
    pthread_once(&l->once, load_once);
    if (l->err.code && err)
        *err = l->err;
    return l->err.code;
}

#define MOLT_LZMA_ROW(name) { #name, offsetof(molt_lzma_lib, name) },
static const molt_dl_fn lzma_fns[] = { MOLT_LZMA_FUNCTIONS(MOLT_LZMA_ROW) };
#undef MOLT_LZMA_ROW
#define MOLT_ZSTD_ROW(name) { #name, offsetof(molt_zstd_lib, name) },
static const molt_dl_fn zstd_fns[] = { MOLT_ZSTD_FUNCTIONS(MOLT_ZSTD_ROW) };
#undef MOLT_ZSTD_ROW

static molt_lzma_lib lzma_table;
static molt_zstd_lib zstd_table;

static lazy lzma_lib = {
    .once = PTHREAD_ONCE_INIT,
    .soname = MOLT_LZMA_SONAME,
    .fns = lzma_fns,
    .n = sizeof lzma_fns / sizeof lzma_fns[0],
    .table = &lzma_table,
    .text = { .need = "xz compression needs liblzma", .install = "liblzma (Debian: liblzma5)",
              .version = "liblzma 5.2 or newer is needed" },
};
static lazy zstd_lib = {
    .once = PTHREAD_ONCE_INIT,
    .soname = MOLT_ZSTD_SONAME,
    .fns = zstd_fns,
    .n = sizeof zstd_fns / sizeof zstd_fns[0],
    .table = &zstd_table,
    .text = { .need = "zstd compression needs libzstd", .install = "libzstd (Debian: libzstd1)",
              .version = "libzstd 1.4 or newer is needed" },
};

static void load_lzma(void) { load(&lzma_lib); }
static void load_zstd(void) { load(&zstd_lib); }

int molt_lzma_get(const molt_lzma_lib **ret, molt_err *err)
{
    int r = get(&lzma_lib, load_lzma, err);
    if (r == 0 && ret)
        *ret = &lzma_table;
    return r;
}

int molt_zstd_get(const molt_zstd_lib **ret, molt_err *err)
{
    int r = get(&zstd_lib, load_zstd, err);
    if (r == 0 && ret)
        *ret = &zstd_table;
    return r;
}

void molt_compress_lib_set_sonames(const char *lzma_soname, const char *zstd_soname)
{
    lzma_lib.soname = lzma_soname ? lzma_soname : MOLT_LZMA_SONAME;
    zstd_lib.soname = zstd_soname ? zstd_soname : MOLT_ZSTD_SONAME;
}

/* libarchive's calls. molt's readers and writers load the library before they add a filter
 * (molt_compression_load) and report a missing one there, so a call before is a bug of molt's:
 * it stops the program with the load's message. No error value would do: libarchive 3.6.2 frees
 * its zstd writer twice when ZSTD_createCStream returns NULL. */
static void unloaded(const molt_err *e, const char *fn)
{
    fprintf(stderr, "molt: %s (libarchive called %s before molt loaded the library)\n", e->msg,
            fn);
    fflush(stderr);
    abort();
}

static const molt_lzma_lib *lz(const char *fn)
{
    if (get(&lzma_lib, load_lzma, NULL) != 0)
        unloaded(&lzma_lib.err, fn);
    return &lzma_table;
}

static const molt_zstd_lib *zs(const char *fn)
{
    if (get(&zstd_lib, load_zstd, NULL) != 0)
        unloaded(&zstd_lib.err, fn);
    return &zstd_table;
}

#define FORWARD(lib, type, name, params, args)                                                \
    type name params { return lib(#name)->name args; }

FORWARD(lz, lzma_ret, lzma_alone_decoder, (lzma_stream *s, uint64_t memlimit), (s, memlimit))
FORWARD(lz, lzma_ret, lzma_alone_encoder, (lzma_stream *s, const lzma_options_lzma *o), (s, o))
FORWARD(lz, lzma_ret, lzma_code, (lzma_stream *s, lzma_action a), (s, a))
FORWARD(lz, uint32_t, lzma_cputhreads, (void), ())
FORWARD(lz, uint32_t, lzma_crc32, (const uint8_t *buf, size_t size, uint32_t crc),
        (buf, size, crc))
FORWARD(lz, lzma_bool, lzma_lzma_preset, (lzma_options_lzma *o, uint32_t preset), (o, preset))
FORWARD(lz, uint64_t, lzma_memusage, (const lzma_stream *s), (s))
FORWARD(lz, lzma_ret, lzma_properties_decode,
        (lzma_filter *f, const lzma_allocator *a, const uint8_t *props, size_t size),
        (f, a, props, size))
FORWARD(lz, lzma_ret, lzma_raw_decoder, (lzma_stream *s, const lzma_filter *f), (s, f))
FORWARD(lz, lzma_ret, lzma_raw_encoder, (lzma_stream *s, const lzma_filter *f), (s, f))
FORWARD(lz, lzma_ret, lzma_stream_decoder, (lzma_stream *s, uint64_t memlimit, uint32_t flags),
        (s, memlimit, flags))
FORWARD(lz, lzma_ret, lzma_stream_encoder,
        (lzma_stream *s, const lzma_filter *f, lzma_check check), (s, f, check))
FORWARD(lz, lzma_ret, lzma_stream_encoder_mt, (lzma_stream *s, const lzma_mt *o), (s, o))

void lzma_end(lzma_stream *s)
{
    lz("lzma_end")->lzma_end(s);
}

FORWARD(zs, size_t, ZSTD_CCtx_setParameter, (ZSTD_CCtx *c, ZSTD_cParameter p, int v), (c, p, v))
FORWARD(zs, size_t, ZSTD_CStreamOutSize, (void), ())
FORWARD(zs, size_t, ZSTD_DStreamOutSize, (void), ())
FORWARD(zs, size_t, ZSTD_compressStream, (ZSTD_CStream *c, ZSTD_outBuffer *o, ZSTD_inBuffer *i),
        (c, o, i))
FORWARD(zs, ZSTD_CStream *, ZSTD_createCStream, (void), ())
FORWARD(zs, ZSTD_DStream *, ZSTD_createDStream, (void), ())
FORWARD(zs, size_t, ZSTD_decompressStream,
        (ZSTD_DStream *d, ZSTD_outBuffer *o, ZSTD_inBuffer *i), (d, o, i))
FORWARD(zs, size_t, ZSTD_endStream, (ZSTD_CStream *c, ZSTD_outBuffer *o), (c, o))
FORWARD(zs, size_t, ZSTD_freeCStream, (ZSTD_CStream *c), (c))
FORWARD(zs, size_t, ZSTD_freeDStream, (ZSTD_DStream *d), (d))
FORWARD(zs, const char *, ZSTD_getErrorName, (size_t code), (code))
FORWARD(zs, size_t, ZSTD_initCStream, (ZSTD_CStream *c, int level), (c, level))
FORWARD(zs, size_t, ZSTD_initDStream, (ZSTD_DStream *d), (d))
FORWARD(zs, unsigned, ZSTD_isError, (size_t code), (code))
FORWARD(zs, int, ZSTD_maxCLevel, (void), ())
FORWARD(zs, int, ZSTD_minCLevel, (void), ())
FORWARD(zs, unsigned, ZSTD_versionNumber, (void), ())
