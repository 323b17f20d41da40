/* SPDX-License-Identifier: Apache-2.0 */
/* A tree's deferred owners and modes (issue 12): what the tar asks for each entry, recorded in a
 * file during the extraction (file_tree.c) and applied once the payload verified. In file.so and
 * in file-tar.so both (file_module.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "file_module.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* One deferred owner and mode (issue 12): what the tar asks for an entry, applied by
 * fm_apply_fixups once the payload verified. Followed by len bytes of its relative name. */
typedef struct fixup {
    int64_t uid, gid;
    uint32_t mode;   /* permission bits, setuid/setgid/sticky included */
    uint32_t len;
} fixup;

int fm_fixup_add(int fd, const char *rel, int64_t uid, int64_t gid, mode_t mode,
                 struct molt_sdk_error *err)
{
    fixup f = {.uid = uid, .gid = gid, .mode = (uint32_t)(mode & 07777),
               .len = (uint32_t)strlen(rel)};
    if (write(fd, &f, sizeof f) != (ssize_t)sizeof f ||
        (f.len && write(fd, rel, f.len) != (ssize_t)f.len))
        return molt_sdk_err_errno(err, errno,
                                  "recording the owner and mode of tar entry '%s'", rel);
    return 0;
}

int fm_apply_fixups(int fix_fd, const char *root, struct molt_sdk_error *err)
{
    char rel[PATH_MAX];
    fixup f;
    int r = 0, root_fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (root_fd < 0)
        return molt_sdk_err_errno(err, errno, "open %s", root);
    if (lseek(fix_fd, 0, SEEK_SET) != 0) {
        r = molt_sdk_err_errno(err, errno, "owners and modes of %s", root);
        goto out;
    }
    for (;;) {
        ssize_t n = read(fix_fd, &f, sizeof f);
        if (n == 0)
            break;
        if (n != (ssize_t)sizeof f || f.len >= sizeof rel ||
            read(fix_fd, rel, f.len) != (ssize_t)f.len) {
            r = fm_err(err, MOLT_EIO, "owners and modes of %s: short read", root);
            goto out;
        }
        rel[f.len] = '\0';
        const char *at = rel[0] ? rel : ".";
        struct stat st;
        if (fstatat(root_fd, at, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            r = molt_sdk_err_errno(err, errno, "stat %s/%s", root, rel);
            goto out;
        }
        mode_t mode = (mode_t)f.mode;
        /* chown first: it clears setuid/setgid, which the chmod then sets. Not root (a test,
         * or a module run as a user): the owner stays, and so do no setuid/setgid bits, as
         * libarchive and GNU tar do. */
        if (fchownat(root_fd, at, (uid_t)f.uid, (gid_t)f.gid, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno != EPERM || geteuid() == 0) {
                r = molt_sdk_err_errno(err, errno, "chown %s/%s to %lld:%lld", root, rel,
                                       (long long)f.uid, (long long)f.gid);
                goto out;
            }
            mode &= ~(mode_t)06000;
        }
        if (!S_ISLNK(st.st_mode) && fchmodat(root_fd, at, mode, 0) != 0) {
            r = molt_sdk_err_errno(err, errno, "chmod %s/%s to %04o", root, rel, (unsigned)mode);
            goto out;
        }
    }
    if (syncfs(root_fd) != 0)
        r = molt_sdk_err_errno(err, errno, "sync %s", root);
out:
    close(root_fd);
    return r;
}
