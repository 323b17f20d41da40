/* SPDX-License-Identifier: Apache-2.0 */
/* c-template: a native molt update module to start from. Payload type "c-template": every
 * payload file is installed into the folder named by the artifact's meta-data {"dest": "<dir>"},
 * with a backup so that the update can be rolled back.
 *   Download          stream each payload file into tmp_dir()/<name>, 0600 (nothing visible
 *                     changes; its bytes are untrusted until the host's read returned 0)
 *   ArtifactInstall   back up dest/<name> into work_dir()/backup/ (or note that it was absent),
 *                     then replace dest/<name> atomically with the staged file
 *   ArtifactRollback  put the backups back, remove files that were new, drop the backups
 *                     (return MOLT_ETEMP when it cannot run yet: molt retries it later)
 *   Cleanup           drop the backups (kept until then: molt rolls back a commit cut short)
 * Every state can be cut by a power loss and is called again: each one only does what is still
 * left to do (a backup is taken once; a restore that already happened is harmless again). */
#include <molt/sdk.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define ABSENT_SUFFIX ".absent"

static int init(const struct molt_host_api *host, void **ret_state)
{
    *ret_state = (void *)host;   /* all the module needs; it keeps nothing else in memory */
    return 0;
}

static int download(void *st)
{
    const struct molt_host_api *h = st;
    struct molt_sdk_error err = {0};
    const char *name;
    int64_t size;
    int r;
    while ((r = h->next_file(h, &name, &size)) == 1) {
        char *path = NULL, *tmp = NULL;
        int fd;
        if (molt_sdk_path_join(h->tmp_dir(h), name, &path, &err) < 0 ||
            molt_sdk_atomic_open(path, 0600, &fd, &tmp, &err) < 0) {
            free(path);
            return molt_sdk_fail(h, &err);
        }
        int64_t got = molt_sdk_copy_payload(h, fd, size, &err);
        if (got < 0) {
            molt_sdk_atomic_abort(fd, tmp);
            free(path);
            return molt_sdk_fail(h, &err);
        }
        r = molt_sdk_atomic_commit(fd, tmp, path, &err);
        free(path);
        if (r < 0)
            return molt_sdk_fail(h, &err);
        molt_sdk_log_info(h, "staged %s (%lld bytes)", name, (long long)got);
    }
    return r;   /* 0: no more files; negative: the host's error (a checksum mismatch, say) */
}

/* The destination folder from the meta-data; malloc'd. */
static int dest_dir(const struct molt_host_api *h, char **ret)
{
    struct molt_sdk_error err = {0};
    if (molt_sdk_json_string(h->meta_data(h), "/dest", ret, &err) < 0) {
        h->error(h, "meta-data: %s (the artifact needs -m with {\"dest\": \"<folder>\"})",
                 err.msg);
        return err.code;
    }
    return 0;
}

static char *join(const char *a, const char *b, const char *suffix)
{
    size_t n = strlen(a) + strlen(b) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", a, b, suffix);
    return p;
}

/* Back up dest/name once (a backup already there is from an earlier, interrupted call). */
static int backup(const struct molt_host_api *h, const char *dest, const char *bdir,
                  const char *name, struct molt_sdk_error *err)
{
    char *cur = join(dest, name, ""), *bak = join(bdir, name, ""),
         *absent = join(bdir, name, ABSENT_SUFFIX);
    int r = 0;
    if (!cur || !bak || !absent)
        r = MOLT_ENOMEM;
    else if (access(bak, F_OK) == 0 || access(absent, F_OK) == 0)
        r = 0;
    else if (access(cur, F_OK) == 0)
        r = molt_sdk_copy_file(cur, bak, 0644, NULL, NULL, err);
    else
        r = molt_sdk_write_file_atomic(absent, "", 0, 0644, err);
    (void)h;
    free(cur);
    free(bak);
    free(absent);
    return r;
}

static int artifact_install(void *st)
{
    const struct molt_host_api *h = st;
    struct molt_sdk_error err = {0};
    char *dest = NULL, *bdir = join(h->work_dir(h), "backup", "");
    DIR *d = NULL;
    int r = dest_dir(h, &dest);
    if (r < 0 || !bdir)
        goto out;
    if (mkdir(bdir, 0700) < 0 && access(bdir, F_OK) < 0) {
        h->error(h, "cannot create %s", bdir);
        r = MOLT_EIO;
        goto out;
    }
    d = opendir(h->tmp_dir(h));
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *src = join(h->tmp_dir(h), de->d_name, ""), *dst = join(dest, de->d_name, "");
        if (!src || !dst)
            r = MOLT_ENOMEM;
        else if ((r = backup(h, dest, bdir, de->d_name, &err)) == 0)
            r = molt_sdk_copy_file(src, dst, 0644, NULL, NULL, &err);
        free(src);
        free(dst);
        if (r < 0) {
            r = err.code ? molt_sdk_fail(h, &err) : r;
            goto out;
        }
        molt_sdk_log_info(h, "installed %s/%s", dest, de->d_name);
    }
    r = 0;
out:
    if (d)
        closedir(d);
    free(dest);
    free(bdir);
    return r;
}

/* Drop the backups (the deployment is over, or they are restored). */
static int drop_backups(const struct molt_host_api *h, const char *bdir)
{
    DIR *d = opendir(bdir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = join(bdir, de->d_name, "");
        if (p)
            unlink(p);
        free(p);
    }
    if (d)
        closedir(d);
    rmdir(bdir);
    (void)h;
    return 0;
}

static int artifact_rollback(void *st)
{
    const struct molt_host_api *h = st;
    struct molt_sdk_error err = {0};
    char *dest = NULL, *bdir = join(h->work_dir(h), "backup", "");
    int r = 0;
    DIR *d = NULL;
    if (!bdir || access(bdir, F_OK) < 0)
        goto out;   /* nothing installed, or already rolled back */
    if ((r = dest_dir(h, &dest)) < 0)
        goto out;
    d = opendir(bdir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        size_t n = strlen(de->d_name), sl = strlen(ABSENT_SUFFIX);
        char *bak = join(bdir, de->d_name, ""), *dst = join(dest, de->d_name, "");
        if (!bak || !dst) {
            r = MOLT_ENOMEM;
        } else if (n > sl && strcmp(de->d_name + n - sl, ABSENT_SUFFIX) == 0) {
            dst[strlen(dst) - sl] = '\0';   /* the file was new: remove it */
            unlink(dst);
        } else {
            r = molt_sdk_copy_file(bak, dst, 0644, NULL, NULL, &err);
        }
        free(bak);
        free(dst);
        if (r < 0) {
            r = err.code ? molt_sdk_fail(h, &err) : r;
            goto out;
        }
    }
    closedir(d);
    d = NULL;
    r = drop_backups(h, bdir);
    molt_sdk_log_info(h, "rolled back %s", dest);
out:
    if (d)
        closedir(d);
    free(dest);
    free(bdir);
    return r;
}

static int cleanup(void *st)
{
    const struct molt_host_api *h = st;
    char *bdir = join(h->work_dir(h), "backup", "");
    if (!bdir)
        return MOLT_ENOMEM;
    int r = drop_backups(h, bdir);
    free(bdir);
    return r;
}

static const char *const payload_types[] = {"c-template", NULL};

static const struct molt_module_desc desc = {
    MOLT_MODULE_V1,
    .name = "c-template",
    .version = "1.0.0",
    .payload_types = payload_types,
    .capabilities = MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK,
    .init = init,
    .download = download,
    .artifact_install = artifact_install,
    .cleanup = cleanup,
    .artifact_rollback = artifact_rollback,
};

MOLT_MODULE_EXPORT const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
