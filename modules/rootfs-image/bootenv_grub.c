/* SPDX-License-Identifier: Apache-2.0 */
/* GRUB environment block backend: the 1024-byte block grub-editenv and GRUB's load_env/save_env
 * use ("# GRUB Environment Block\n", key=value lines, '#' padding), rewritten IN PLACE, with an
 * optional second copy and a sequence number so that a torn write is never the only copy.
 *
 * Why in place: GRUB reads the file system without replaying its journal. A file replaced by
 * rename (or truncated and rewritten) has its new directory entry or block map in the ext4
 * journal only, for up to ~30 s after fsync returned, so GRUB would read the OLD block after a
 * power cut. Rewriting the same 1024 bytes of the same inode (no size change, no new blocks) and
 * fdatasync puts the bytes where GRUB reads them; GRUB's own save_env writes the same way.
 *
 * Two copies (grubenv + grubenv_redundant): each holds molt_env_seq=N. The current copy is the
 * valid one with the higher N, copy 1 on a tie (GRUB's script, doc/rootfs-image.md, picks the same
 * way and writes copy 1 then copy 2 with the same N). A set writes the other copy first with N+1,
 * fdatasync, then the current one: while either is being written the other holds a whole block
 * (the newest one written). The text is kept within the first 512 bytes, so a write torn at a
 * sector boundary yields the old block or the new one, never a mix (the rest is '#' in both). */
#include "bootenv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define GRUBENV_SIZE 1024
#define GRUBENV_SECTOR 512
#define GRUBENV_HEADER "# GRUB Environment Block\n"
#define GRUBENV_SEQ "molt_env_seq"

/* Read the block into buf (GRUBENV_SIZE + 1 bytes, NUL-terminated), checking its shape. */
static int grub_load(const char *path, char *buf, struct molt_sdk_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return molt_sdk_err_errno(err, errno, "GRUB environment %s: cannot open it", path);
    size_t got = fread(buf, 1, GRUBENV_SIZE + 1, f);
    fclose(f);
    buf[GRUBENV_SIZE] = '\0';
    if (got != GRUBENV_SIZE)
        return rootfs_err(err, MOLT_EFORMAT, "GRUB environment %s: expected %d bytes, got %s%zu",
                          path, GRUBENV_SIZE, got > GRUBENV_SIZE ? "more than " : "",
                          got > GRUBENV_SIZE ? (size_t)GRUBENV_SIZE : got);
    if (memcmp(buf, GRUBENV_HEADER, strlen(GRUBENV_HEADER)) != 0)
        return rootfs_err(err, MOLT_EFORMAT, "GRUB environment %s: does not start with \"# GRUB "
                          "Environment Block\"", path);
    if (memchr(buf, '\0', GRUBENV_SIZE))
        return rootfs_err(err, MOLT_EFORMAT, "GRUB environment %s: holds a NUL byte", path);
    return 0;
}

/* The value of name in the block (a line "name=value"), copied, or NULL. */
static char *grub_lookup(const char *block, const char *name)
{
    size_t nl = strlen(name);
    const char *line = block + strlen(GRUBENV_HEADER);
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end)
            break;   /* the padding's last line */
        if (line[0] != '#' && (size_t)(end - line) > nl && memcmp(line, name, nl) == 0 &&
            line[nl] == '=')
            return strndup(line + nl + 1, (size_t)(end - line) - nl - 1);
        line = end + 1;
    }
    return NULL;
}

/* A copy's sequence number: molt_env_seq, a decimal number; false when missing or malformed. */
static bool grub_seq(const char *block, uint64_t *ret)
{
    char *v = grub_lookup(block, GRUBENV_SEQ);
    bool ok = v && *v && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 18;
    if (ok)
        *ret = strtoull(v, NULL, 10);
    free(v);
    return ok;
}

/* The environment as the bootloader sees it. With one copy (path2 NULL): that block. With two:
 * each copy that loads and holds a sequence number is valid; the current one is the valid one
 * with the higher number, copy 1 on a tie. *ret_cur is 0 or 1 (the copy in block), *ret_seq its
 * number (0 with one copy). */
static int grub_current(const char *path1, const char *path2, char *block, int *ret_cur,
                        uint64_t *ret_seq, struct molt_sdk_error *err)
{
    if (!path2) {
        *ret_cur = 0;
        *ret_seq = 0;
        return grub_load(path1, block, err);
    }
    char other[GRUBENV_SIZE + 1];
    struct molt_sdk_error err1 = {0}, err2 = {0};
    uint64_t seq1 = 0, seq2 = 0;
    bool ok1 = grub_load(path1, block, &err1) == 0;
    bool ok2 = grub_load(path2, other, &err2) == 0;
    if (ok1 && !grub_seq(block, &seq1)) {
        ok1 = false;
        rootfs_err(&err1, MOLT_EFORMAT, "GRUB environment %s: no valid %s", path1, GRUBENV_SEQ);
    }
    if (ok2 && !grub_seq(other, &seq2)) {
        ok2 = false;
        rootfs_err(&err2, MOLT_EFORMAT, "GRUB environment %s: no valid %s", path2, GRUBENV_SEQ);
    }
    if (!ok1 && !ok2)
        return rootfs_err(err, MOLT_EFORMAT, "GRUB environment: no valid copy (%s; %s)",
                          err1.msg, err2.msg);
    if (ok1 && (!ok2 || seq1 >= seq2)) {
        *ret_cur = 0;
        *ret_seq = seq1;
    } else {
        memcpy(block, other, sizeof other);
        *ret_cur = 1;
        *ret_seq = seq2;
    }
    return 0;
}

static int grub_get(const char *config, const char *config2, size_t n, const char *const *names,
                    char **values, struct molt_sdk_error *err)
{
    char block[GRUBENV_SIZE + 1];
    int cur;
    uint64_t seq;
    int r = grub_current(config, config2, block, &cur, &seq, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        values[i] = grub_lookup(block, names[i]);
    return 0;
}

/* GRUB escapes '\\' and newlines in values; the module's values never need them. */
static int grub_check(const char *config, const char *name, const char *value,
                      struct molt_sdk_error *err)
{
    if (!*name || strpbrk(name, "=\n\\#") || (value && strpbrk(value, "\n\\")) ||
        strcmp(name, GRUBENV_SEQ) == 0)
        return rootfs_err(err, MOLT_EINVAL, "GRUB environment %s: cannot store %s=%s (a name "
                          "must not hold '=', '#', '\\\\' or a newline, nor be %s; a value neither "
                          "'\\\\' nor a newline)", config, name, value ? value : "", GRUBENV_SEQ);
    return 0;
}

/* Rewrite the 1024 bytes of path in place (same inode, same blocks) and fdatasync them. */
static int grub_write_in_place(const char *path, const char *block, struct molt_sdk_error *err)
{
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return molt_sdk_err_errno(err, errno, "GRUB environment %s: cannot open it for writing",
                                  path);
    struct stat st;
    int r = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != GRUBENV_SIZE) {
        r = rootfs_err(err, MOLT_EFORMAT, "GRUB environment %s: not a regular file of %d bytes "
                       "(it is rewritten in place)", path, GRUBENV_SIZE);
        goto out;
    }
    size_t done = 0;
    while (done < GRUBENV_SIZE) {
        ssize_t w = pwrite(fd, block + done, GRUBENV_SIZE - done, (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            r = molt_sdk_err_errno(err, errno, "GRUB environment %s: write failed", path);
            goto out;
        }
        done += (size_t)w;
    }
    if (fdatasync(fd) != 0)
        r = molt_sdk_err_errno(err, errno, "GRUB environment %s: fdatasync failed", path);
out:
    close(fd);
    return r;
}

/* Test-only switch (docs/rootfs-image.md, used by the VM tier to cut the power between the two
 * writes): with MOLT_ROOTFS_TEST_PAUSE_ENV=1 the process says so on stderr and waits forever
 * after the first copy is written. */
static void test_pause_between_copies(const char *written)
{
    const char *pause_env = getenv("MOLT_ROOTFS_TEST_PAUSE_ENV");
    if (!pause_env || strcmp(pause_env, "1") != 0)
        return;
    fprintf(stderr, "molt-test: paused after writing GRUB environment copy %s\n", written);
    fflush(stderr);
    for (;;)
        pause();
}

static int grub_set(const char *config, const char *config2, size_t n, const char *const *names,
                    const char *const *values, struct molt_sdk_error *err)
{
    char old[GRUBENV_SIZE + 1], out[GRUBENV_SIZE + 1];
    size_t len = strlen(GRUBENV_HEADER);
    int cur;
    uint64_t seq;
    int r = grub_current(config, config2, old, &cur, &seq, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        if ((r = grub_check(config, names[i], values[i], err)) < 0)
            return r;
    memcpy(out, GRUBENV_HEADER, len);
    if (config2)
        len += (size_t)snprintf(out + len, sizeof out - len, "%s=%" PRIu64 "\n", GRUBENV_SEQ,
                                seq + 1);
    /* Keep the other variables, in their order; then the ones set here. */
    const char *line = old + strlen(GRUBENV_HEADER);
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end)
            break;
        size_t ll = (size_t)(end - line) + 1;
        bool replaced = line[0] == '#' ||
                        (ll > strlen(GRUBENV_SEQ) + 1 && memcmp(line, GRUBENV_SEQ "=",
                                                                strlen(GRUBENV_SEQ) + 1) == 0);
        for (size_t i = 0; i < n && !replaced; i++) {
            size_t nl = strlen(names[i]);
            replaced = ll > nl + 1 && memcmp(line, names[i], nl) == 0 && line[nl] == '=';
        }
        if (!replaced) {
            if (len + ll > GRUBENV_SIZE)
                goto full;
            memcpy(out + len, line, ll);
            len += ll;
        }
        line = end + 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!values[i])
            continue;
        int w = snprintf(out + len, sizeof out - len, "%s=%s\n", names[i], values[i]);
        if (w < 0 || (size_t)w >= sizeof out - len)
            goto full;
        len += (size_t)w;
    }
    if (config2 && len > GRUBENV_SECTOR)
        return rootfs_err(err, MOLT_ESPACE, "GRUB environment %s: the variables (%zu bytes) do "
                          "not fit in the first %d bytes of the block, where a torn write cannot "
                          "mix two versions", config, len, GRUBENV_SECTOR);
    memset(out + len, '#', GRUBENV_SIZE - len);
    if (!config2)
        return grub_write_in_place(config, out, err);
    /* The copy that is not the current one first: the current one stays whole meanwhile. */
    const char *paths[2] = {config, config2};
    if ((r = grub_write_in_place(paths[1 - cur], out, err)) < 0)
        return r;
    test_pause_between_copies(paths[1 - cur]);
    return grub_write_in_place(paths[cur], out, err);
full:
    return rootfs_err(err, MOLT_ESPACE, "GRUB environment %s: the variables do not fit in %d "
                      "bytes", config, GRUBENV_SIZE);
}

const bootenv_backend bootenv_grub = {
    .name = "grub",
    .get = grub_get,
    .set = grub_set,
};
