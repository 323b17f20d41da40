/* SPDX-License-Identifier: Apache-2.0 */
/* Streaming reader for Mender Artifact v3. Reads version, manifest, signature and header,
 * verifies them, then yields each payload file as a stream that is hashed while it is read;
 * a checksum mismatch fails the read at the end of that file. Never holds a payload in memory,
 * never writes a temporary copy. */
#ifndef MOLT_ARTIFACT_READER_H
#define MOLT_ARTIFACT_READER_H

#include <stdint.h>
#include <sys/types.h>
#include "artifact/artifact.h"
#include "artifact/source.h"
#include "util/err.h"

typedef struct molt_artifact_reader molt_artifact_reader;

typedef struct molt_artifact_opts {
    /* Public keys (PEM file paths) tried in order. When n_verify_keys > 0 an unsigned artifact,
     * or one no key verifies, is refused. With no keys a signature is not checked. */
    const char *const *verify_keys;
    size_t n_verify_keys;
} molt_artifact_opts;

/* Read and verify everything up to the first payload file: version, manifest, manifest.sig
 * (verified if keys are given), header (its checksum and all JSON). src is borrowed and must
 * outlive the reader. On failure *ret is untouched and err names the member and the reason. */
int molt_artifact_reader_open(molt_artifact_reader **ret, molt_source *src,
                              const molt_artifact_opts *opts, molt_err *err);

/* The header; owned by the reader, valid until molt_artifact_reader_free. */
const molt_artifact_info *molt_artifact_reader_info(const molt_artifact_reader *r);

/* Move to the next payload file (the rest of the current one is read and verified first).
 * Returns 1 with *ret_name (owned by the reader, valid until the next call) and *ret_size set;
 * 0 when there are no more files and the whole artifact has been checked (every manifest entry
 * seen, nothing after the data); or a negative MOLT_E* code. */
int molt_artifact_reader_next(molt_artifact_reader *r, const char **ret_name, int64_t *ret_size,
                              molt_err *err);

/* Read bytes of the current payload file into buf. Returns the count (> 0), 0 at the end of
 * the file once its checksum matched, or a negative code (MOLT_ECHECKSUM on mismatch). */
ssize_t molt_artifact_reader_read(molt_artifact_reader *r, void *buf, size_t len, molt_err *err);

/* Zero-copy variant: *ret_buf points into the reader's buffer, valid until the next call. */
ssize_t molt_artifact_reader_read_block(molt_artifact_reader *r, const void **ret_buf,
                                        molt_err *err);

/* Hand every byte of the current payload file, in order, to sink(ctx, p, len) as well, on the
 * reader's hashing thread right after hashing it (inline without that thread), so that what
 * the caller does with the bytes (a write) overlaps the decompression of the next ones. Only
 * before the first read of a file (MOLT_ESTATE otherwise); it ends with the file. When the sink
 * fails, read/read_block return its code (err: "the payload sink failed ...") once every queued
 * byte was hashed. Whenever read/read_block/next return 0 or an error, the sink is not running
 * and is not called again for the file. */
int molt_artifact_reader_set_sink(molt_artifact_reader *r,
                                  int (*sink)(void *ctx, const void *p, size_t len), void *ctx,
                                  molt_err *err);

/* Stop handing bytes to the sink of the current file (if any), once the bytes queued so far
 * went through it: after this the sink is never called again. */
void molt_artifact_reader_clear_sink(molt_artifact_reader *r);

/* Read every remaining payload byte and check the rest of the artifact; 0 if all is well. */
int molt_artifact_reader_finish(molt_artifact_reader *r, molt_err *err);

void molt_artifact_reader_free(molt_artifact_reader *r);

#endif
