/* SPDX-License-Identifier: Apache-2.0 */
/* The file module's tar payloads: a checked extraction (libarchive) into a staged folder, from
 * the payload stream or from a staged copy of the tar. Built as file-tar.so (file_module.h), which
 * file.so loads on the first tree. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "file_tar.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <archive_entry.h>

#define TAR_BLOCK 65536

typedef struct payload_src {
    fm *m;
    int *status;
} payload_src;

static la_ssize_t payload_read(struct archive *a, void *ctx, const void **buf)
{
    payload_src *s = ctx;
    int64_t n = s->m->h->read_block(s->m->h, buf);
    if (n < 0) {
        *s->status = (int)n;
        archive_set_error(a, EIO, "reading the payload failed (%d)", (int)n);
        return -1;
    }
    fm_count_bytes(s->m, n);
    return (la_ssize_t)n;
}

static int payload_close(struct archive *a, void *ctx)
{
    (void)a;
    free(ctx);
    return ARCHIVE_OK;
}

static struct archive *new_reader(void)
{
    struct archive *a = archive_read_new();
    if (a) {
        archive_read_support_format_tar(a);
        archive_read_support_filter_all(a);
    }
    return a;
}

struct archive *fm_archive_from_payload(fm *m, int *ret_status)
{
    struct archive *a = new_reader();
    payload_src *s = calloc(1, sizeof *s);
    if (!a || !s) {
        free(s);
        if (a)
            archive_read_free(a);
        return NULL;
    }
    s->m = m;
    s->status = ret_status;
    if (archive_read_open(a, s, NULL, payload_read, payload_close) != ARCHIVE_OK) {
        archive_read_free(a);   /* the close callback freed s */
        return NULL;
    }
    return a;
}

struct archive *fm_archive_from_file(const char *path)
{
    struct archive *a = new_reader();
    if (a && archive_read_open_filename(a, path, TAR_BLOCK) != ARCHIVE_OK) {
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* A relative entry name made canonical in out (no "./" prefix, no trailing or double "/"): ""
 * for the tree's root. -1 for an absolute name or one with "..", -2 when it has more than
 * FM_TREE_DEPTH_MAX components, -3 when it does not fit in cap bytes. */
static int clean_rel(const char *name, char *out, size_t cap)
{
    size_t used = 0, depth = 0;
    if (name[0] == '/')
        return -1;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    int r = 0;
    out[0] = '\0';
    for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, ".") == 0)
            continue;
        size_t n = strlen(c);
        if (strcmp(c, "..") == 0) {
            r = -1;
            break;
        }
        if (++depth > FM_TREE_DEPTH_MAX) {
            r = -2;
            break;
        }
        if (used + n + 2 > cap) {
            r = -3;
            break;
        }
        if (used)
            out[used++] = '/';
        memcpy(out + used, c, n + 1);
        used += n;
    }
    free(copy);
    return r;
}

/* Refuse the entry name (clean_rel gave c) with the reason. */
static int refuse_name(const char *name, const char *what, int c, size_t cap,
                       struct molt_sdk_error *err)
{
    if (c == -2)
        return fm_err(err, MOLT_ELIMIT, "tar entry '%.200s%s'%s: more than %d levels deep: "
                      "refused (the limit of the file module)", name,
                      strlen(name) > 200 ? "..." : "", what, FM_TREE_DEPTH_MAX);
    if (c == -3)
        return fm_err(err, MOLT_ELIMIT, "tar entry '%.200s%s'%s: its path in the tree would be "
                      "%zu bytes or more, the limit is %zu (PATH_MAX %d, less the destination's "
                      "own path): refused", name, strlen(name) > 200 ? "..." : "", what,
                      strlen(name), cap - 1, PATH_MAX);
    return fm_err(err, MOLT_EINVAL, "tar entry '%.200s'%s: absolute or with '..': refused", name,
                  what);
}

/* Does the symlink at rel (canonical) with target stay inside the tree, read lexically? */
static int link_inside(const char *rel, const char *target)
{
    if (target[0] == '/' || target[0] == '\0')
        return 0;
    int depth = 0;
    for (const char *p = rel; *p; p++)
        depth += *p == '/';
    char *copy = strdup(target);
    if (!copy)
        return 0;
    int ok = 1;
    for (char *save = NULL, *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (strcmp(c, "..") == 0) {
            if (--depth < 0) {
                ok = 0;
                break;
            }
        } else if (strcmp(c, ".") != 0) {
            depth++;
        }
    }
    free(copy);
    return ok;
}

static const char *type_name(mode_t type)
{
    switch (type) {
    case AE_IFCHR: return "character device";
    case AE_IFBLK: return "block device";
    case AE_IFIFO: return "fifo";
    case AE_IFSOCK: return "socket";
    default: return "file of an unknown type";
    }
}

/* The walk of the extracted tree: every symlink must resolve inside it (a chain of links that
 * are each inside, read lexically, can still leave: "a -> s/.." with "s -> ."). */
static const char *walk_root;
static char walk_bad[PATH_MAX];

static int check_link(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_SL && flag != FTW_SLN)
        return 0;
    /* The link's target read from its folder; a dangling one: the longest prefix that resolves. */
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    char *probe = NULL, *dir = fm_dirname(path);
    int ok = 0;
    if (n > 0 && dir) {
        target[n] = '\0';
        if (asprintf(&probe, "%s/%s", dir, target) < 0)
            probe = NULL;
    }
    free(dir);
    while (probe) {
        char *rp = realpath(probe, NULL);
        if (rp) {
            size_t len = strlen(walk_root);
            ok = strncmp(rp, walk_root, len) == 0 && (rp[len] == '\0' || rp[len] == '/');
            free(rp);
            break;
        }
        char *slash = strrchr(probe, '/');
        if (!slash || slash == probe)
            break;
        *slash = '\0';
    }
    free(probe);
    if (!ok) {
        snprintf(walk_bad, sizeof walk_bad, "%s", path);
        return 1;
    }
    return 0;
}

int fm_extract_tar(fm *m, struct archive *in, const char *root, uint64_t avail, int fix_fd,
                   struct molt_sdk_error *err)
{
    struct archive *out = archive_write_disk_new();
    struct archive_entry *ae;
    char rel[PATH_MAX], hard[PATH_MAX], full[PATH_MAX * 2 + 2];
    uint64_t total = 0, written = 0;
    int r = 0, ar;
    /* Every entry's path, root included, fits in PATH_MAX: the tree stays usable by path. */
    size_t room = strlen(root) + 2 < sizeof rel ? sizeof rel - strlen(root) - 1 : 1;
    if (!out)
        return fm_err(err, MOLT_ENOMEM, "out of memory");
    /* No ARCHIVE_EXTRACT_OWNER and no setuid/setgid/sticky bit now: every entry is molt's own
     * until the payload verified; what the tar asks for goes to fix_fd (fm_apply_fixups). */
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                            ARCHIVE_EXTRACT_SECURE_NODOTDOT);
    archive_write_disk_set_standard_lookup(out);
    while ((ar = archive_read_next_header(in, &ae)) != ARCHIVE_EOF) {
        if (ar < ARCHIVE_WARN) {
            r = fm_err(err, MOLT_EFORMAT, "tar: %s", archive_error_string(in));
            goto out;
        }
        /* The entry's name as the tar gives it, copied: archive_entry_set_pathname below
         * replaces the string archive_entry_pathname points to. */
        const char *raw = archive_entry_pathname(ae);
        char name[PATH_MAX];
        snprintf(name, sizeof name, "%s", raw && raw[0] ? raw : "(empty name)");
        const char *hl = archive_entry_hardlink(ae);
        mode_t type = archive_entry_filetype(ae);
        int c = raw ? clean_rel(raw, rel, room) : -1;
        if (c < 0) {
            r = refuse_name(raw ? name : "(no name)", "", c, room, err);
            goto out;
        }
        if (hl) {
            if ((c = clean_rel(hl, hard, room)) < -1) {
                r = refuse_name(name, " (a hard link)", c, room, err);
                goto out;
            }
            if (c < 0 || !hard[0]) {
                r = fm_err(err, MOLT_EINVAL, "tar entry '%s': hard link to '%s' outside the tree: "
                           "refused", name, hl);
                goto out;
            }
            snprintf(full, sizeof full, "%s/%s", root, hard);
            archive_entry_set_hardlink(ae, full);
        } else if (type == AE_IFLNK) {
            const char *target = archive_entry_symlink(ae);
            if (!target || !link_inside(rel, target)) {
                r = fm_err(err, MOLT_EINVAL, "tar entry '%s': symlink to '%s' points outside the "
                           "tree: refused", name, target ? target : "");
                goto out;
            }
        } else if (type != AE_IFREG && type != AE_IFDIR) {
            r = fm_err(err, MOLT_EINVAL, "tar entry '%s' is a %s: refused", name, type_name(type));
            goto out;
        }
        if (!rel[0] && (hl || type != AE_IFDIR)) {
            r = fm_err(err, MOLT_EINVAL, "tar entry '%s' names the tree's root but is not a folder",
                       name);
            goto out;
        }
        int64_t size = archive_entry_size(ae);
        if (size > 0 && !hl)
            total += (uint64_t)size;
        if (total > avail) {
            r = fm_err(err, MOLT_ESPACE, "not enough space in %s: the tar's files need more than "
                       "%llu bytes (at entry '%s'), %llu bytes available", root,
                       (unsigned long long)total, name, (unsigned long long)avail);
            goto out;
        }
        if (!hl) {
            /* The owner by name, then id, as GNU tar as root (libarchive's standard lookup). */
            int64_t uid = archive_write_disk_uid(out, archive_entry_uname(ae),
                                                 archive_entry_uid(ae));
            int64_t gid = archive_write_disk_gid(out, archive_entry_gname(ae),
                                                 archive_entry_gid(ae));
            mode_t perm = archive_entry_perm(ae);
            if ((r = fm_fixup_add(fix_fd, rel, uid, gid, perm, err)) < 0)
                goto out;
            /* The tree's top folder stays 0700 (nobody else reaches anything below it). */
            archive_entry_set_perm(ae, rel[0] ? perm & 0777 : 0700);
        } else {
            archive_entry_set_perm(ae, archive_entry_perm(ae) & 0777);
        }
        snprintf(full, sizeof full, "%s%s%s", root, rel[0] ? "/" : "", rel);
        archive_entry_set_pathname(ae, full);
        if (archive_write_header(out, ae) < ARCHIVE_WARN) {
            r = fm_err(err, MOLT_EIO, "tar entry '%s': %s", name, archive_error_string(out));
            goto out;
        }
        if (type == AE_IFREG && !hl && size > 0) {
            const void *buf;
            size_t len;
            la_int64_t off;
            while ((ar = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
                if (archive_write_data_block(out, buf, len, off) < ARCHIVE_OK) {
                    r = fm_err(err, MOLT_EIO, "tar entry '%s': %s", name,
                               archive_error_string(out));
                    goto out;
                }
                written += len;
                m->h->progress(m->h, written, 0);
            }
            if (ar != ARCHIVE_EOF) {
                r = fm_err(err, MOLT_EFORMAT, "tar entry '%s': %s", name,
                           archive_error_string(in));
                goto out;
            }
        }
        if (archive_write_finish_entry(out) < ARCHIVE_WARN) {
            r = fm_err(err, MOLT_EIO, "tar entry '%s': %s", name, archive_error_string(out));
            goto out;
        }
    }
    if (archive_write_close(out) != ARCHIVE_OK) {
        r = fm_err(err, MOLT_EIO, "extract into %s: %s", root, archive_error_string(out));
        goto out;
    }
    walk_root = root;
    if (nftw(root, check_link, 16, FTW_PHYS) != 0) {
        r = fm_err(err, MOLT_EINVAL, "symlink %s resolves outside the tree: refused", walk_bad);
        goto out;
    }
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0)
        r = molt_sdk_err_errno(err, errno, "sync %s", root);
    if (fd >= 0)
        close(fd);
out:
    archive_write_free(out);
    return r;
}

/* The tar of a tree from the payload stream (raw NULL) or from raw, extracted into root. */
static int extract(fm *m, const char *raw, const char *what, const char *root, uint64_t avail,
                   int fix_fd, int *ret_status, struct molt_sdk_error *err)
{
    struct archive *a = raw ? fm_archive_from_file(raw) : fm_archive_from_payload(m, ret_status);
    if (!a)
        return fm_err(err, MOLT_EIO, "open the tar of %s", what);
    int r = fm_extract_tar(m, a, root, avail, fix_fd, err);
    archive_read_free(a);
    return r;
}

static const fm_tar tar = {
    .size = sizeof(fm_tar),
    .version = FM_TAR_VERSION,
    .fm_size = sizeof(fm),
    .extract = extract,
};

const fm_tar *molt_file_tar_entry(void)
{
    return &tar;
}
