/* SPDX-License-Identifier: Apache-2.0 */
/* GRUB environment block backend: the 1024-byte file grub-editenv and GRUB's load_env/save_env
 * use ("# GRUB Environment Block\n", key=value lines, '#' padding), replaced atomically
 * (temporary file, fsync, rename, fsync of the folder). */
#include "bootenv.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GRUBENV_SIZE 1024
#define GRUBENV_HEADER "# GRUB Environment Block\n"

/* Read the block into buf (GRUBENV_SIZE + 1 bytes, NUL-terminated), checking its shape. */
static int grub_load(const char *path, char *buf, struct molt_sdk_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rootfs_err(err, MOLT_EIO, "GRUB environment %s: cannot open it: %m", path);
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

static int grub_get(const char *config, size_t n, const char *const *names, char **values,
                    struct molt_sdk_error *err)
{
    char block[GRUBENV_SIZE + 1];
    int r = grub_load(config, block, err);
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
    if (!*name || strpbrk(name, "=\n\\#") || (value && strpbrk(value, "\n\\")))
        return rootfs_err(err, MOLT_EINVAL, "GRUB environment %s: cannot store %s=%s (a name "
                          "must not hold '=', '#', '\\\\' or a newline, a value neither '\\\\' "
                          "nor a newline)", config, name, value ? value : "");
    return 0;
}

static int grub_set(const char *config, size_t n, const char *const *names,
                    const char *const *values, struct molt_sdk_error *err)
{
    char old[GRUBENV_SIZE + 1], out[GRUBENV_SIZE + 1];
    size_t len = strlen(GRUBENV_HEADER);
    int r = grub_load(config, old, err);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        if ((r = grub_check(config, names[i], values[i], err)) < 0)
            return r;
    memcpy(out, GRUBENV_HEADER, len);
    /* Keep the other variables, in their order; then the ones set here. */
    const char *line = old + len;
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end)
            break;
        size_t ll = (size_t)(end - line) + 1;
        bool replaced = line[0] == '#';
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
    memset(out + len, '#', GRUBENV_SIZE - len);
    return molt_sdk_write_file_atomic(config, out, GRUBENV_SIZE, 0644, err);
full:
    return rootfs_err(err, MOLT_ESPACE, "GRUB environment %s: the variables do not fit in %d "
                      "bytes", config, GRUBENV_SIZE);
}

const bootenv_backend bootenv_grub = {
    .name = "grub",
    .get = grub_get,
    .set = grub_set,
};
