/* Fuzz target for the streaming artifact reader: the input is an artifact file. It is read to
 * the end twice, without keys and with one ECDSA public key (so the signature path runs too),
 * pulling every payload byte through the checksum. Runs under libFuzzer (MOLT_FUZZ) and, over
 * the committed corpus, as an ordinary test through corpus_driver.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact/reader.h"
#include "artifact/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key that signed the signed seeds in tests/fuzz/corpus/artifact/ (its private half is not
 * kept: the seeds are data, not something to regenerate). */
static const char fuzz_pub_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErIHLK2rD62jf6HQasvGcXvLu6mGo\n"
    "IP8FVyDDaaBI3ShWWmVhh4zjxxpCZb7aLMmIgRvER/8Zss3TL/IQ/w5AfQ==\n"
    "-----END PUBLIC KEY-----\n";

static char key_path[64];

static void remove_key(void)
{
    unlink(key_path);
}

/* Writes the public key to a temporary file once; returns its path, or NULL if that failed
 * (then only the keyless pass runs). */
static const char *fuzz_key(void)
{
    static int state; /* 0 = not tried, 1 = ready, -1 = failed */
    if (state == 0) {
        state = -1;
        snprintf(key_path, sizeof key_path, "/tmp/molt-fuzz-key.XXXXXX");
        int fd = mkstemp(key_path);
        if (fd >= 0) {
            size_t n = sizeof fuzz_pub_pem - 1;
            if (write(fd, fuzz_pub_pem, n) == (ssize_t)n) {
                state = 1;
                atexit(remove_key);
            } else {
                unlink(key_path);
            }
            close(fd);
        }
    }
    return state == 1 ? key_path : NULL;
}

/* Opens the artifact and reads every payload file to its end (through the zero-copy call or
 * through a small copy buffer), then the rest of the artifact. */
static void read_all(const uint8_t *data, size_t size, const molt_artifact_opts *opts,
                     int zero_copy)
{
    molt_source *src = NULL;
    molt_artifact_reader *r = NULL;
    molt_err err = {0};
    const char *name;
    int64_t fsize;
    int rc;

    if (molt_source_mem_new(&src, data, size, &err) < 0)
        return;
    if (molt_artifact_reader_open(&r, src, opts, &err) < 0)
        goto out;
    (void)molt_artifact_reader_info(r);
    while ((rc = molt_artifact_reader_next(r, &name, &fsize, &err)) == 1) {
        unsigned char copy[4096];
        const void *buf;
        ssize_t n;
        do
            n = zero_copy ? molt_artifact_reader_read_block(r, &buf, &err)
                          : molt_artifact_reader_read(r, copy, sizeof copy, &err);
        while (n > 0);
        if (n < 0)
            goto out;
    }
    if (rc == 0)
        (void)molt_artifact_reader_finish(r, &err);
out:
    molt_artifact_reader_free(r);
    molt_source_free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    molt_artifact_opts no_keys = {0};
    read_all(data, size, &no_keys, 1);

    const char *key = fuzz_key();
    if (key) {
        const char *keys[] = {key};
        molt_artifact_opts with_key = {.verify_keys = keys, .n_verify_keys = 1};
        read_all(data, size, &with_key, 0);
    }
    return 0;
}
