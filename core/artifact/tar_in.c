/* SPDX-License-Identifier: Apache-2.0 */
/* Inner tars of an artifact: decompressor chosen by suffix, magic bytes checked, entries limited
 * to plain regular files with sane names. */
#include "artifact/tar_in.h"

#include <stdio.h>
#include <string.h>

static const unsigned char magic_gzip[] = { 0x1f, 0x8b };
static const unsigned char magic_xz[] = { 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00 };
static const unsigned char magic_zstd[] = { 0x28, 0xb5, 0x2f, 0xfd };

int molt_tar_in_compression(const char *name, const char *base, molt_compression *ret)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0)
        return MOLT_EFORMAT;
    static const molt_compression all[] = { MOLT_COMPRESSION_NONE, MOLT_COMPRESSION_GZIP,
                                            MOLT_COMPRESSION_XZ, MOLT_COMPRESSION_ZSTD };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name + bl, molt_compression_suffix(all[i])) == 0) {
            *ret = all[i];
            return 0;
        }
    }
    return MOLT_EFORMAT;
}

static const unsigned char *magic_of(molt_compression c, size_t *ret_len)
{
    switch (c) {
    case MOLT_COMPRESSION_GZIP: *ret_len = sizeof magic_gzip; return magic_gzip;
    case MOLT_COMPRESSION_XZ: *ret_len = sizeof magic_xz; return magic_xz;
    case MOLT_COMPRESSION_ZSTD: *ret_len = sizeof magic_zstd; return magic_zstd;
    case MOLT_COMPRESSION_NONE: break;
    }
    *ret_len = 0;
    return NULL;
}

size_t molt_tar_in_magic_len(molt_compression c)
{
    size_t n;
    magic_of(c, &n);
    return n;
}

static void hex_bytes(const unsigned char *p, size_t n, char *out, size_t outsz)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used + 4 < outsz; i++)
        used += (size_t)snprintf(out + used, outsz - used, "%s%02x", i ? " " : "", p[i]);
}

int molt_tar_in_check_magic(molt_compression c, const unsigned char *p, size_t n,
                            const char *member, molt_err *err)
{
    size_t len;
    const unsigned char *magic = magic_of(c, &len);
    if (!magic)
        return 0;
    if (n >= len && memcmp(p, magic, len) == 0)
        return 0;
    char want[32], got[32];
    hex_bytes(magic, len, want, sizeof want);
    hex_bytes(p, n < len ? n : len, got, sizeof got);
    return molt_err_set(err, MOLT_EFORMAT,
                        "%s: not %s data as its name says: expected magic bytes %s, found %s%s",
                        member, molt_compression_name(c), want, n ? got : "nothing",
                        n < len ? " (member too short)" : "");
}

static int filter_code(molt_compression c)
{
    switch (c) {
    case MOLT_COMPRESSION_GZIP: return ARCHIVE_FILTER_GZIP;
    case MOLT_COMPRESSION_XZ: return ARCHIVE_FILTER_XZ;
    case MOLT_COMPRESSION_ZSTD: return ARCHIVE_FILTER_ZSTD;
    case MOLT_COMPRESSION_NONE: break;
    }
    return ARCHIVE_FILTER_NONE;
}

int molt_tar_in_new(struct archive **ret, molt_compression c, bool allow_empty,
                    const char *member, molt_err *err)
{
    /* a missing liblzma or libzstd is said here, before libarchive calls it */
    int lr = molt_compression_load(c, member, err);
    if (lr < 0)
        return lr;
    struct archive *a = archive_read_new();
    int rc = ARCHIVE_OK;
    if (!a)
        return molt_err_set(err, MOLT_ENOMEM, "%s: out of memory", member);
    switch (c) {
    case MOLT_COMPRESSION_GZIP: rc = archive_read_support_filter_gzip(a); break;
    case MOLT_COMPRESSION_XZ: rc = archive_read_support_filter_xz(a); break;
    case MOLT_COMPRESSION_ZSTD: rc = archive_read_support_filter_zstd(a); break;
    case MOLT_COMPRESSION_NONE: break;
    }
    /* ARCHIVE_WARN here means libarchive would run an external program: not for us. */
    if (rc != ARCHIVE_OK) {
        archive_read_free(a);
        return molt_err_set(err, MOLT_EUNSUPPORTED, "%s: this libarchive cannot decode %s",
                            member, molt_compression_name(c));
    }
    archive_read_support_format_tar(a);
    if (allow_empty)
        archive_read_support_format_empty(a);
    *ret = a;
    return 0;
}

int molt_tar_in_check_filter(struct archive *a, molt_compression c, const char *member,
                             molt_err *err)
{
    if (archive_filter_code(a, 0) == filter_code(c))
        return 0;
    return molt_err_set(err, MOLT_EFORMAT, "%s: not a valid %s stream", member,
                        molt_compression_name(c));
}

const char *molt_tar_in_type_name(struct archive_entry *e)
{
    if (archive_entry_hardlink(e))
        return "hardlink";
    switch (archive_entry_filetype(e)) {
    case AE_IFREG: return "regular file";
    case AE_IFLNK: return "symlink";
    case AE_IFDIR: return "directory";
    case AE_IFCHR: return "character device";
    case AE_IFBLK: return "block device";
    case AE_IFIFO: return "fifo";
    case AE_IFSOCK: return "socket";
    default: return "entry of unknown type";
    }
}

const char *molt_tar_in_printable(const char *name, char *out, size_t outsz)
{
    size_t i = 0;
    for (; name[i] && i + 1 < outsz; i++) {
        unsigned char ch = (unsigned char)name[i];
        out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    out[i] = '\0';
    return out;
}

int molt_tar_in_check_entry(struct archive_entry *e, const char *member, const char **ret_name,
                            molt_err *err)
{
    char shown[MOLT_ARTIFACT_MAX_NAME + 1];
    const char *name = archive_entry_pathname(e);
    if (!name || !*name)
        return molt_err_set(err, MOLT_EFORMAT, "%s: an entry has no name", member);
    size_t len = strlen(name);
    molt_tar_in_printable(name, shown, sizeof shown);
    if (len > MOLT_ARTIFACT_MAX_NAME)
        return molt_err_set(err, MOLT_ELIMIT,
                            "%s: entry name \"%s...\" is %zu bytes; the limit is %d", member,
                            shown, len, MOLT_ARTIFACT_MAX_NAME);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch < 0x20 || ch == 0x7f)
            return molt_err_set(err, MOLT_EFORMAT,
                                "%s: entry name \"%s\" contains control characters", member,
                                shown);
    }
    if (archive_entry_hardlink(e) || archive_entry_filetype(e) != AE_IFREG) {
        const char *target = archive_entry_hardlink(e) ? archive_entry_hardlink(e)
                                                       : archive_entry_symlink(e);
        char tshown[MOLT_ARTIFACT_MAX_NAME + 1] = "";
        if (target)
            molt_tar_in_printable(target, tshown, sizeof tshown);
        return molt_err_set(err, MOLT_EFORMAT,
                            "%s: entry \"%s\" is a %s%s%s; only regular files are allowed",
                            member, shown, molt_tar_in_type_name(e), target ? " to " : "",
                            tshown);
    }
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
        return molt_err_set(err, MOLT_EFORMAT, "%s: entry \"%s\" has no size", member, shown);
    if (archive_entry_sparse_count(e) > 0)
        return molt_err_set(err, MOLT_EFORMAT,
                            "%s: entry \"%s\" is a sparse file; only regular files are allowed",
                            member, shown);
    *ret_name = name;
    return 0;
}
