/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for molt_artifact_sign, which walks the raw tar blocks of an untrusted artifact
 * (ustar, base-256 sizes, pax and GNU long-name headers). The input is the artifact; when
 * signing succeeds, signing the result again must succeed and give a file of the same length
 * (the signature is replaced, not added twice; ECDSA signatures are randomized, so only their
 * length is stable), and a failed sign must leave no output. Runs under libFuzzer (MOLT_FUZZ)
 * and over the committed corpus as an ordinary test. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "artifact/writer.h"
#include "util/fs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[] = "/tmp/molt-fuzz-sign-XXXXXX";
static char key[128], in[128], out[128], again[128];

static void cleanup(void)
{
    molt_rm_rf(dir, NULL);
}

/* A fresh P-256 key in a temporary folder, made once per process. */
static int setup(void)
{
    static int state; /* 0 = not tried, 1 = ready, -1 = failed */
    if (state)
        return state;
    state = -1;
    if (!mkdtemp(dir))
        return state;
    atexit(cleanup);
    snprintf(key, sizeof key, "%s/ec.key", dir);
    snprintf(in, sizeof in, "%s/in.mender", dir);
    snprintf(out, sizeof out, "%s/out.mender", dir);
    snprintf(again, sizeof again, "%s/again.mender", dir);
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    FILE *f = fopen(key, "w");
    if (pkey && f && PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) == 1)
        state = 1;
    if (f)
        fclose(f);
    EVP_PKEY_free(pkey);
    return state;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (setup() < 0)
        abort();
    if (molt_write_file_atomic(in, data, size, 0600, NULL) < 0)
        abort();
    if (molt_artifact_sign(in, out, key, NULL) == 0) {
        /* signing what we signed changes nothing but the signature's bytes */
        if (molt_artifact_sign(out, again, key, NULL) != 0)
            abort();
        char *a = NULL, *b = NULL;
        size_t alen = 0, blen = 0;
        if (molt_read_file(out, 64 << 20, &a, &alen, NULL) < 0 ||
            molt_read_file(again, 64 << 20, &b, &blen, NULL) < 0 || alen != blen)
            abort();
        free(a);
        free(b);
    } else if (molt_path_exists(out)) {
        abort(); /* a failed sign must not leave output */
    }
    unlink(out);
    unlink(again);
    return 0;
}
