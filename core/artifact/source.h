/* SPDX-License-Identifier: Apache-2.0 */
/* A byte source the artifact reader pulls from: a file, stdin, or an HTTP download
 * (core/transport implements the latter). Pull-based so the reader drives the pace and
 * nothing is staged. */
#ifndef MOLT_ARTIFACT_SOURCE_H
#define MOLT_ARTIFACT_SOURCE_H

#include <stdint.h>
#include <sys/types.h>
#include "util/err.h"

typedef struct molt_source molt_source;

/* Implementations embed this struct as their first member. */
struct molt_source {
    /* Return the next chunk: *ret_buf points to bytes owned by the source, valid until the
     * next call. Returns the number of bytes (> 0), 0 at the end, or a negative MOLT_E* code
     * with err filled. */
    ssize_t (*read)(molt_source *src, const void **ret_buf, molt_err *err);
    /* Release everything; accepts NULL via molt_source_free. */
    void (*free)(molt_source *src);
    /* A name for messages (path or URL); owned by the source. */
    const char *name;
    /* Bytes delivered so far, and the total if known (-1 if not); maintained by the source. */
    int64_t offset;
    int64_t total;
};

/* A source reading a file ("-" = standard input) with a reusable buffer. */
int molt_source_file_new(molt_source **ret, const char *path, molt_err *err);
/* A source over memory that the caller keeps alive (tests, fuzzing). */
int molt_source_mem_new(molt_source **ret, const void *data, size_t size, molt_err *err);

static inline ssize_t molt_source_read(molt_source *src, const void **ret_buf, molt_err *err)
{
    return src->read(src, ret_buf, err);
}
void molt_source_free(molt_source *src);

#endif
