/* SPDX-License-Identifier: Apache-2.0 */
/* molt_artifact_sign: add or replace manifest.sig in an artifact, copying the 512-byte blocks of
 * every other member verbatim (as `mender-artifact sign` leaves header and data untouched). */
#include "artifact/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact/tar_write.h"
#include "trust/signature.h"
#include "util/fs.h"

#define COPY_BUF_SIZE (64 * 1024)
#define MAX_EXT_HEADER (64 * 1024) /* pax / GNU long-name blocks before one member */

typedef struct copier {
    int in, out;
    const char *in_path;
    unsigned char *chunk;
} copier;

/* Read exactly len bytes; a short read means the artifact is truncated. */
static int read_exact(copier *c, void *dst, size_t len, const char *what, molt_err *err)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(c->in, (char *)dst + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return molt_err_errno(err, MOLT_EIO, errno, "cannot read %s", c->in_path);
        if (n == 0)
            return molt_err_set(err, MOLT_EFORMAT, "%s is truncated in %s", c->in_path, what);
        got += (size_t)n;
    }
    return 0;
}

/* Copy len bytes from in to out (out < 0: skip them). */
static int copy_bytes(copier *c, uint64_t len, const char *what, molt_err *err)
{
    while (len) {
        size_t n = len > COPY_BUF_SIZE ? COPY_BUF_SIZE : (size_t)len;
        int r = read_exact(c, c->chunk, n, what, err);
        if (r == 0 && c->out >= 0)
            r = molt_write_all(c->out, c->chunk, n, err, what);
        if (r < 0)
            return r;
        len -= n;
    }
    return 0;
}

/* Copy whatever follows the end-of-archive block. */
static int copy_rest(copier *c, molt_err *err)
{
    for (;;) {
        ssize_t n = read(c->in, c->chunk, COPY_BUF_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return molt_err_errno(err, MOLT_EIO, errno, "cannot read %s", c->in_path);
        if (n == 0)
            return 0;
        int r = molt_write_all(c->out, c->chunk, (size_t)n, err, "tar end");
        if (r < 0)
            return r;
    }
}

/* "path" and "size" records of a pax extended header ("%d key=value\n" each). */
static void pax_overrides(const char *data, size_t len, molt_tar_header *h)
{
    size_t i = 0;
    while (i < len) {
        char *end;
        unsigned long rec = strtoul(data + i, &end, 10);
        if (rec == 0 || rec > len - i || *end != ' ')
            return;
        const char *kv = end + 1, *stop = data + i + rec - 1; /* stop at the '\n' */
        const char *eq = memchr(kv, '=', (size_t)(stop - kv));
        if (eq) {
            size_t klen = (size_t)(eq - kv), vlen = (size_t)(stop - eq - 1);
            if (klen == 4 && memcmp(kv, "path", 4) == 0 && vlen < sizeof h->name) {
                memcpy(h->name, eq + 1, vlen);
                h->name[vlen] = '\0';
            } else if (klen == 4 && memcmp(kv, "size", 4) == 0) {
                h->size = strtoull(eq + 1, NULL, 10);
            }
        }
        i += rec;
    }
}

int molt_artifact_sign(const char *in_path, const char *out_path, const char *key_path,
                       molt_err *err)
{
    copier c = {.in = -1, .out = -1, .in_path = in_path};
    char *manifest = NULL, *sig = NULL, *tmp = NULL;
    unsigned char *ext = NULL;
    size_t ext_len = 0;
    if (!in_path || !out_path || !key_path)
        return molt_err_set(err, MOLT_EINVAL, "molt_artifact_sign: invalid arguments");
    int r = 0;
    c.chunk = malloc(COPY_BUF_SIZE);
    ext = malloc(MAX_EXT_HEADER);
    if (!c.chunk || !ext) {
        r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
        goto out;
    }
    c.in = open(in_path, O_RDONLY | O_CLOEXEC);
    if (c.in < 0) {
        r = molt_err_errno(err, errno == ENOENT ? MOLT_ENOTFOUND : MOLT_EIO, errno,
                           "cannot open %s", in_path);
        goto out;
    }
    if ((r = molt_atomic_open(out_path, 0644, &c.out, &tmp, err)) < 0)
        goto out;

    unsigned n_members = 0;
    bool signed_it = false;
    /* pending extended-header blocks (pax 'x', GNU 'L'/'K') that belong to the next member */
    molt_tar_header over = {0};
    bool have_over = false;
    for (;;) {
        unsigned char block[MOLT_TAR_BLOCK];
        molt_tar_header h;
        r = read_exact(&c, block, sizeof block, "a tar header", err);
        int kind = r < 0 ? r : molt_tar_header_parse(block, &h, err);
        if (kind < 0 && n_members == 0 && !ext_len && kind == MOLT_EFORMAT) {
            r = molt_err_set(err, MOLT_EFORMAT, "%s is not a Mender artifact (not a tar file)",
                             in_path);
            goto out;
        }
        if (r < 0)
            goto out;
        if (kind < 0) {
            r = molt_err_prefix(err, "%s (member %u): ", in_path, n_members + 1);
            goto out;
        }
        if (kind == 0) {
            if (ext_len) {
                r = molt_err_set(err, MOLT_EFORMAT, "%s: extended header at the end", in_path);
                goto out;
            }
            if ((r = molt_write_all(c.out, block, sizeof block, err, "tar end")) < 0 ||
                (r = copy_rest(&c, err)) < 0)
                goto out;
            break;
        }
        if (h.typeflag == 'x' || h.typeflag == 'L' || h.typeflag == 'K') {
            uint64_t padded = molt_tar_padded(h.size);
            if (ext_len + MOLT_TAR_BLOCK + padded > MAX_EXT_HEADER) {
                r = molt_err_set(err, MOLT_ELIMIT, "%s: extended tar header larger than %d bytes",
                                 in_path, MAX_EXT_HEADER);
                goto out;
            }
            memcpy(ext + ext_len, block, MOLT_TAR_BLOCK);
            ext_len += MOLT_TAR_BLOCK;
            if ((r = read_exact(&c, ext + ext_len, (size_t)padded, "an extended header",
                                err)) < 0)
                goto out;
            if (!have_over)
                over = (molt_tar_header){.size = UINT64_MAX};
            have_over = true;
            if (h.typeflag == 'x')
                pax_overrides((const char *)ext + ext_len, (size_t)h.size, &over);
            else if (h.typeflag == 'L' && h.size < sizeof over.name) {
                memcpy(over.name, ext + ext_len, (size_t)h.size);
                over.name[h.size] = '\0';
            }
            ext_len += (size_t)padded;
            continue;
        }
        if (have_over) {
            if (over.name[0])
                memcpy(h.name, over.name, sizeof h.name);
            if (over.size != UINT64_MAX)
                h.size = over.size;
        }
        n_members++;
        if (n_members == 1 && strcmp(h.name, "version") != 0) {
            r = molt_err_set(err, MOLT_EFORMAT, "%s is not a Mender artifact: first member is "
                             "\"%s\", expected \"version\"", in_path, h.name);
            goto out;
        }
        bool is_sig = strcmp(h.name, "manifest.sig") == 0;
        if (is_sig && !manifest) {
            r = molt_err_set(err, MOLT_EFORMAT, "%s: manifest.sig comes before manifest", in_path);
            goto out;
        }
        if (!is_sig && !manifest && n_members > 1 && strcmp(h.name, "manifest") != 0) {
            r = molt_err_set(err, MOLT_EFORMAT, "%s: member \"%s\" where manifest was expected",
                             in_path, h.name);
            goto out;
        }
        if (is_sig) {
            /* the old signature is dropped: skip its blocks */
            int out_fd = c.out;
            c.out = -1;
            r = copy_bytes(&c, molt_tar_padded(h.size), "manifest.sig", err);
            c.out = out_fd;
            if (r < 0)
                goto out;
        } else {
            if (ext_len && (r = molt_write_all(c.out, ext, ext_len, err, h.name)) < 0)
                goto out;
            if ((r = molt_write_all(c.out, block, sizeof block, err, h.name)) < 0)
                goto out;
            if (strcmp(h.name, "manifest") == 0 && !manifest) {
                if (h.size > MOLT_ARTIFACT_MAX_MANIFEST) {
                    r = molt_err_set(err, MOLT_ELIMIT, "%s: manifest is %llu bytes, more than "
                                     "the %u allowed", in_path, (unsigned long long)h.size,
                                     MOLT_ARTIFACT_MAX_MANIFEST);
                    goto out;
                }
                size_t padded = (size_t)molt_tar_padded(h.size);
                manifest = malloc(padded + 1);
                if (!manifest) {
                    r = molt_err_set(err, MOLT_ENOMEM, "out of memory");
                    goto out;
                }
                if ((r = read_exact(&c, manifest, padded, "manifest", err)) < 0 ||
                    (r = molt_write_all(c.out, manifest, padded, err, "manifest")) < 0)
                    goto out;
                if ((r = molt_signature_sign(key_path, manifest, (size_t)h.size, &sig, err)) < 0) {
                    molt_err_prefix(err, "signing the manifest of %s: ", in_path);
                    goto out;
                }
                const molt_tar_meta meta = {.mode = 0600};
                if ((r = molt_tar_write_member(c.out, "manifest.sig", sig, strlen(sig), &meta,
                                               err)) < 0)
                    goto out;
                signed_it = true;
            } else if ((r = copy_bytes(&c, molt_tar_padded(h.size), h.name, err)) < 0) {
                goto out;
            }
        }
        ext_len = 0;
        have_over = false;
    }
    if (!signed_it) {
        r = molt_err_set(err, MOLT_EFORMAT, "%s is not a Mender artifact: no manifest", in_path);
        goto out;
    }
    r = molt_atomic_commit(c.out, tmp, out_path, err);
    c.out = -1;
out:
    if (c.out >= 0)
        molt_atomic_abort(c.out, tmp);
    if (c.in >= 0)
        close(c.in);
    free(tmp);
    free(sig);
    free(manifest);
    free(ext);
    free(c.chunk);
    return r;
}
