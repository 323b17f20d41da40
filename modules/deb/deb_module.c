/* SPDX-License-Identifier: Apache-2.0 */
/* The deb module: payload type "deb" (one or more .deb files, as Mender's community deb module),
 * installed with dpkg into a configurable root in one transaction, with a real rollback: the
 * previous versions are repacked (dpkg-repack) before anything changes and reinstalled on
 * rollback, new packages are purged. See README.md and docs/deb-module.md. */
#include "deb.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define DEB_KV_PAYLOAD "payload"   /* the staged .deb file names, one a line */
#define DEB_KV_PLAN "plan"         /* name \t previous version or - \t repacked .deb or - */
#define DEB_KV_COMMITTED "committed" /* ArtifactCommit ran: Cleanup drops the previous versions */
#define DEB_KV_MAX 65536
#define DEB_MSG_MAX 2048

/* rm -rf path (missing is fine). */
static int remove_tree(deb_ctx *d, const char *path)
{
    struct molt_sdk_error err = {0};
    return molt_sdk_rm_rf(path, &err) < 0 ? molt_sdk_fail(d->host, &err) : 0;
}

static bool truthy(const char *v)
{
    return v && (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0);
}

static int init(const struct molt_host_api *host, void **ret_state)
{
    deb_ctx *d = calloc(1, sizeof *d);
    if (!d)
        return MOLT_ENOMEM;
    d->host = host;
    /* molt.yaml modules: deb: root, admindir, script_chrootless; MOLT_DEB_ROOT for tools (the
     * conformance kit) that cannot write module settings */
    const char *root = host->config_get(host, "root");
    if (!root)
        root = getenv("MOLT_DEB_ROOT");
    if (!root || !*root)
        root = "/";
    const char *admin = host->config_get(host, "admindir");
    if (root[0] != '/' || strlen(root) >= sizeof d->root) {
        host->error(host, "setting root: \"%s\" is not an absolute path", root);
        free(d);
        return MOLT_ECONFIG;
    }
    snprintf(d->root, sizeof d->root, "%s", root);
    if (admin && *admin)
        snprintf(d->admindir, sizeof d->admindir, "%s", admin);
    else
        snprintf(d->admindir, sizeof d->admindir, "%s%svar/lib/dpkg", d->root,
                 d->root[strlen(d->root) - 1] == '/' ? "" : "/");
    d->chrootless = truthy(host->config_get(host, "script_chrootless"));
    *ret_state = d;
    return 0;
}

static void fini(void *st)
{
    free(st);
}

static int debs_dir(deb_ctx *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/debs", d->host->tmp_dir(d->host));
    if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
        struct molt_sdk_error e;
        molt_sdk_err_errno(&e, errno, "mkdir %s", buf);
        return molt_sdk_fail(d->host, &e);
    }
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Download: every payload file ending in .deb -> tmp_dir()/debs/<name> (dpkg needs files). */
static int download(void *st)
{
    deb_ctx *d = st;
    const struct molt_host_api *h = d->host;
    struct molt_sdk_error err = {0};
    char dir[4096], *names = calloc(1, DEB_KV_MAX);
    size_t used = 0, count = 0;
    const char *name;
    int64_t size;
    int r = names ? debs_dir(d, dir, sizeof dir) : MOLT_ENOMEM;
    while (r == 0 && (r = h->next_file(h, &name, &size)) == 1) {
        r = 0;
        if (!ends_with(name, ".deb")) {
            molt_sdk_log_info(h, "payload file %s is not a .deb: ignored", name);
            continue;
        }
        if (++count > DEB_PKGS_MAX || used + strlen(name) + 2 > DEB_KV_MAX) {
            h->error(h, "more than %d .deb files in the payload", DEB_PKGS_MAX);
            r = MOLT_ELIMIT;
            break;
        }
        char *path = NULL, *tmp = NULL;
        int fd;
        deb_pkg p = {0};
        if ((r = molt_sdk_path_join(dir, name, &path, &err)) < 0 ||
            (r = molt_sdk_atomic_open(path, 0644, &fd, &tmp, &err)) < 0) {
            free(path);
            r = molt_sdk_fail(h, &err);
            break;
        }
        int64_t got = molt_sdk_copy_payload(h, fd, size, &err);
        if (got < 0) {
            molt_sdk_atomic_abort(fd, tmp);
            free(path);
            r = err.code ? molt_sdk_fail(h, &err) : (int)got;
            break;
        }
        if ((r = molt_sdk_atomic_commit(fd, tmp, path, &err)) < 0)
            r = molt_sdk_fail(h, &err);
        else if ((r = deb_control_load(d, path, &p)) == 0)
            molt_sdk_log_info(h, "staged %s: package %s %s (%s)", name, p.name, p.version,
                              p.arch);
        deb_pkg_free(&p);
        free(path);
        used += (size_t)snprintf(names + used, DEB_KV_MAX - used, "%s\n", name);
    }
    if (r == 0 && count == 0) {
        h->error(h, "the payload has no .deb file");
        r = MOLT_EFORMAT;
    }
    if (r == 0)
        r = h->kv_set(h, DEB_KV_PAYLOAD, names, used);
    free(names);
    return r;
}

/* A kv value as a NUL-terminated malloc'd string in *ret. */
static int kv_text(deb_ctx *d, const char *key, char **ret)
{
    char *buf = malloc(DEB_KV_MAX + 1);
    size_t len = 0;
    if (!buf)
        return MOLT_ENOMEM;
    int r = d->host->kv_get(d->host, key, buf, DEB_KV_MAX, &len);
    if (r < 0) {
        free(buf);
        if (r != MOLT_ENOTFOUND)
            d->host->error(d->host, "kv key %s: read failed (%d)", key, r);
        return r;
    }
    buf[len] = '\0';
    *ret = buf;
    return 0;
}

/* The staged payload packages (control fields of each .deb). */
static int payload_load(deb_ctx *d, deb_list *ret)
{
    char dir[4096], *names = NULL;
    deb_list l = {0};
    int r = debs_dir(d, dir, sizeof dir);
    if (r == 0 && (r = kv_text(d, DEB_KV_PAYLOAD, &names)) == MOLT_ENOTFOUND)
        d->host->error(d->host, "no staged packages: Download did not complete");
    for (char *save = NULL, *n = r == 0 ? strtok_r(names, "\n", &save) : NULL; n && r == 0;
         n = strtok_r(NULL, "\n", &save)) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, n);
        deb_pkg *grown = realloc(l.v, (l.n + 1) * sizeof *l.v);
        if (!grown) {
            r = MOLT_ENOMEM;
            break;
        }
        l.v = grown;
        memset(&l.v[l.n], 0, sizeof *l.v);
        if ((r = deb_control_load(d, path, &l.v[l.n])) == 0)
            l.n++;
    }
    free(names);
    if (r < 0) {
        deb_list_free(&l);
        return r;
    }
    *ret = l;
    return 0;
}

/* "dpkg [--root R] --admindir A [--force-script-chrootless]" + extra + files, run. */
static int dpkg(deb_ctx *d, const char *const extra[], const deb_list *files,
                const char *const names[], deb_buf *out)
{
    const char *argv[DEB_PKGS_MAX + 16];
    char root[1100], admin[1300];
    size_t n = 0;
    argv[n++] = "dpkg";
    if (strcmp(d->root, "/") != 0) {
        snprintf(root, sizeof root, "--root=%s", d->root);
        argv[n++] = root;
    }
    snprintf(admin, sizeof admin, "--admindir=%s", d->admindir);
    argv[n++] = admin;
    if (d->chrootless)
        argv[n++] = "--force-script-chrootless";
    for (size_t i = 0; extra[i]; i++)
        argv[n++] = extra[i];
    for (size_t i = 0; files && i < files->n; i++)
        argv[n++] = files->v[i].file;
    for (size_t i = 0; names && names[i]; i++)
        argv[n++] = names[i];
    argv[n] = NULL;
    return deb_run(d, argv, NULL, false, out);
}

/* dpkg --audit: 0 when clean, else MOLT_EMODULE naming what it found (prefix says when). */
static int audit(deb_ctx *d, const char *when)
{
    static const char *const extra[] = {"--audit", NULL};
    deb_buf out = {0};
    int r = dpkg(d, extra, NULL, NULL, &out);
    if (r > 0 || (r == 0 && out.len > 0)) {
        d->host->error(d->host, "dpkg --audit of %s %s: %s", d->admindir, when,
                       deb_tail(&out, 600));
        r = MOLT_EMODULE;
    }
    deb_buf_free(&out);
    return r;
}

/* The architectures dpkg accepts in the root: "all", the native one, the foreign ones. */
static int check_arch(deb_ctx *d, const deb_list *payload)
{
    static const char *const native[] = {"--print-architecture", NULL};
    static const char *const foreign[] = {"--print-foreign-architectures", NULL};
    deb_buf a = {0}, b = {0};
    int r = dpkg(d, native, NULL, NULL, &a);
    if (r == 0)
        r = dpkg(d, foreign, NULL, NULL, &b);
    for (size_t i = 0; r == 0 && i < payload->n; i++) {
        const char *arch = payload->v[i].arch;
        size_t len = strlen(arch);
        bool ok = strcmp(arch, "all") == 0;
        for (const char *s = a.data; !ok && s && (s = strstr(s, arch)); s += len)
            ok = (s == a.data || s[-1] == '\n') && (s[len] == '\n' || !s[len]);
        for (const char *s = b.data; !ok && s && (s = strstr(s, arch)); s += len)
            ok = (s == b.data || s[-1] == '\n') && (s[len] == '\n' || !s[len]);
        if (!ok) {
            d->host->error(d->host, "package %s %s is for architecture %s; dpkg in %s accepts all, %s",
                           payload->v[i].name, payload->v[i].version, arch, d->root,
                           deb_tail(&a, 100));
            r = MOLT_EDEPENDS;
        }
    }
    if (r > 0) {
        d->host->error(d->host, "dpkg --print-architecture exited with %d", r);
        r = MOLT_EMODULE;
    }
    deb_buf_free(&a);
    deb_buf_free(&b);
    return r;
}

static int previous_dir(deb_ctx *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/previous", d->host->work_dir(d->host));
    return 0;
}

/* Repack the installed package name into dir/<name>/ and return the .deb's path. */
static int repack(deb_ctx *d, const char *dir, const char *name, char *ret, size_t cap)
{
    char sub[4400], root[1100];
    snprintf(sub, sizeof sub, "%s/%s", dir, name);
    if (mkdir(sub, 0700) < 0 && errno != EEXIST) {
        struct molt_sdk_error e;
        molt_sdk_err_errno(&e, errno, "mkdir %s", sub);
        return molt_sdk_fail(d->host, &e);
    }
    snprintf(root, sizeof root, "--root=%s", d->root);
    const char *argv[] = {"dpkg-repack", root, name, NULL};
    deb_buf out = {0};
    int r = deb_run(d, argv, sub, false, &out);
    if (r != 0) {
        if (r > 0)
            d->host->error(d->host, "dpkg-repack of %s (in %s) exited with %d: %s", name,
                           d->root, r, deb_tail(&out, 500));
        deb_buf_free(&out);
        return r > 0 ? MOLT_EMODULE : r;
    }
    deb_buf_free(&out);
    /* dpkg-repack names it <name>_<version without epoch>_<arch>.deb: the only .deb in sub */
    DIR *listing = opendir(sub);
    struct dirent *de;
    int found = 0;
    while (listing && (de = readdir(listing)))
        if (ends_with(de->d_name, ".deb") && strncmp(de->d_name, name, strlen(name)) == 0 &&
            de->d_name[strlen(name)] == '_') {
            snprintf(ret, cap, "%s/%s", sub, de->d_name);
            found++;
        }
    if (listing)
        closedir(listing);
    if (found != 1) {
        d->host->error(d->host, "dpkg-repack of %s left %d %s_*.deb files in %s (expected one)",
                       name, found, name, sub);
        return MOLT_EMODULE;
    }
    return 0;
}

/* Add name to the rollback plan: old (installed, repacked now into prev) or NULL (new). */
static int plan_add(deb_ctx *d, char *plan, size_t *used, const char *prev, const char *name,
                    const deb_pkg *old, const char *brings)
{
    char file[8400] = "-";
    int r;
    if (old) {
        if ((r = repack(d, prev, name, file, sizeof file)) < 0)
            return r;
        molt_sdk_log_info(d->host, "%s %s is installed: repacked to %s; the update brings %s",
                          name, old->version, file, brings);
    } else {
        molt_sdk_log_info(d->host, "%s is new: it is purged on rollback", name);
    }
    size_t need = strlen(name) + strlen(file) + (old ? strlen(old->version) : 1) + 4;
    if (*used + need > DEB_KV_MAX) {
        d->host->error(d->host, "the rollback plan exceeds %d bytes", DEB_KV_MAX);
        return MOLT_ELIMIT;
    }
    *used += (size_t)snprintf(plan + *used, DEB_KV_MAX - *used, "%s\t%s\t%s\n", name,
                              old ? old->version : "-", file);
    return 0;
}

/* ArtifactInstall: check, record the previous versions and repack them, then one dpkg -i. */
static int artifact_install(void *st)
{
    deb_ctx *d = st;
    const struct molt_host_api *h = d->host;
    deb_list payload = {0}, db = {0};
    char msg[DEB_MSG_MAX], prev[4096], *plan = calloc(1, DEB_KV_MAX);
    size_t used = 0;
    int r = plan ? payload_load(d, &payload) : MOLT_ENOMEM;
    if (r == 0)
        r = check_arch(d, &payload);
    if (r == 0)
        r = audit(d, "before the update (fix the package database first)");
    if (r == 0)
        r = deb_db_load(d, &db);
    if (r == 0 && (r = deb_check_depends(&db, &payload, msg, sizeof msg)) < 0)
        h->error(h, "unmet dependencies, nothing was changed: %s", msg);
    /* the previous versions: repacked into work_dir()/previous/<name>/ */
    previous_dir(d, prev, sizeof prev);
    if (r == 0 && (r = remove_tree(d, prev)) == 0 && mkdir(prev, 0700) < 0) {
        struct molt_sdk_error e;
        molt_sdk_err_errno(&e, errno, "mkdir %s", prev);
        r = molt_sdk_fail(h, &e);
    }
    for (size_t i = 0; r == 0 && i < payload.n; i++) {
        const deb_pkg *old = deb_list_find(&db, payload.v[i].name);
        r = plan_add(d, plan, &used, prev, payload.v[i].name,
                     old && deb_status_installed(old->status) ? old : NULL, payload.v[i].version);
    }
    /* installed packages a payload package conflicts with: dpkg may remove them */
    const deb_pkg *conflicting[DEB_PKGS_MAX];
    size_t n_conf = r == 0 ? deb_conflicting(&db, &payload, conflicting, DEB_PKGS_MAX) : 0;
    for (size_t i = 0; r == 0 && i < n_conf; i++)
        r = plan_add(d, plan, &used, prev, conflicting[i]->name, conflicting[i], "(removed)");
    /* the plan is durable before dpkg changes anything: a crash from here on rolls back */
    if (r == 0)
        r = h->kv_set(h, DEB_KV_PLAN, plan, used);
    if (r == 0) {
        static const char *const extra[] = {"--install", NULL};
        deb_buf out = {0};
        r = dpkg(d, extra, &payload, NULL, &out);
        if (r > 0) {
            h->error(h, "dpkg --install in %s exited with %d: %s", d->root, r,
                     deb_tail(&out, 700));
            r = MOLT_EMODULE;
        }
        deb_buf_free(&out);
    }
    if (r == 0)
        r = audit(d, "after the update");
    deb_list_free(&db);
    if (r == 0 && (r = deb_db_load(d, &db)) == 0) {
        for (size_t i = 0; r == 0 && i < payload.n; i++) {
            const deb_pkg *now = deb_list_find(&db, payload.v[i].name);
            if (!now || strcmp(now->status, "ii ") != 0 ||
                strcmp(now->version, payload.v[i].version) != 0) {
                h->error(h, "after dpkg --install, %s is %s %s, expected ii %s",
                         payload.v[i].name, now ? now->status : "absent",
                         now ? now->version : "", payload.v[i].version);
                r = MOLT_EMODULE;
            }
        }
    }
    deb_list_free(&db);
    deb_list_free(&payload);
    free(plan);
    return r;
}

/* One plan line split into its three fields (in place). */
static bool plan_fields(char *line, char **name, char **version, char **file)
{
    *name = line;
    char *t1 = strchr(line, '\t');
    char *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2)
        return false;
    *t1 = *t2 = '\0';
    *version = t1 + 1;
    *file = t2 + 1;
    return true;
}

/* Whether dpkg failed because another process (apt, an operator's dpkg) holds its lock: a
 * rollback retried later can succeed (MOLT_ETEMP). */
static bool locked(const deb_buf *out)
{
    return out->data && strstr(out->data, "locked by another process");
}

/* ArtifactRollback: purge the new packages, reinstall the repacked previous versions; then the
 * packages of the plan are as before. Idempotent: what is already as before is left alone, and
 * the plan is dropped once the rollback is complete. */
static int artifact_rollback(void *st)
{
    deb_ctx *d = st;
    const struct molt_host_api *h = d->host;
    char *plan = NULL, prev[4096];
    deb_list db = {0}, reinstall = {0};
    const char *purge[DEB_PKGS_MAX + 1];
    size_t n_purge = 0;
    int r = h->kv_delete(h, DEB_KV_COMMITTED);   /* a commit cut short: undone */
    if (r == 0)
        r = kv_text(d, DEB_KV_PLAN, &plan);
    if (r == MOLT_ENOTFOUND) {
        molt_sdk_log_info(h, "no rollback plan: this deployment changed no package");
        return 0;
    }
    /* A dpkg killed with molt (kill -9, a crash: it dies with molt, docs/deb-module.md) leaves
     * the update's packages half-installed or half-configured. The rollback itself is the
     * repair: it purges the new packages (--force-remove-reinstreq) and reinstalls the previous
     * versions over what is half done. `dpkg --configure -a` is not run: it would run the very
     * maintainer scripts of the update that were interrupted. */
    if (r == 0 && audit(d, "before the rollback") != 0)
        molt_sdk_log_warning(h, "dpkg was interrupted during the update; the rollback repairs "
                                "the update's packages");
    if (r == 0)
        r = deb_db_load(d, &db);
    if (r == 0 && !(reinstall.v = calloc(DEB_PKGS_MAX, sizeof *reinstall.v)))
        r = MOLT_ENOMEM;
    for (char *save = NULL, *line = r == 0 ? strtok_r(plan, "\n", &save) : NULL;
         line && r == 0; line = strtok_r(NULL, "\n", &save)) {
        char *name, *version, *file;
        if (!plan_fields(line, &name, &version, &file) || n_purge >= DEB_PKGS_MAX ||
            reinstall.n >= DEB_PKGS_MAX) {
            h->error(h, "kv key plan: malformed line \"%s\"", line);
            r = MOLT_ECORRUPT;
            break;
        }
        const deb_pkg *now = deb_list_find(&db, name);
        if (strcmp(version, "-") == 0) {
            if (now)
                purge[n_purge++] = name;
        } else if (!now || strcmp(now->status, "ii ") != 0 || strcmp(now->version, version) != 0) {
            reinstall.v[reinstall.n++].file = file;
        }
    }
    purge[n_purge] = NULL;
    /* new packages first (an upgraded package's new version may depend on them, hence
     * --force-depends; a package they conflict with can then come back) */
    if (r == 0 && n_purge > 0) {
        static const char *const extra[] = {"--purge", "--force-remove-reinstreq",
                                             "--force-depends", NULL};
        deb_buf out = {0};
        r = dpkg(d, extra, NULL, purge, &out);
        if (r > 0) {
            h->error(h, "rollback: dpkg --purge of the new packages exited with %d: %s", r,
                     deb_tail(&out, 700));
            r = locked(&out) ? MOLT_ETEMP : MOLT_EMODULE;
        }
        deb_buf_free(&out);
    }
    if (r == 0 && reinstall.n > 0) {
        static const char *const extra[] = {"--install", NULL};
        deb_buf out = {0};
        r = dpkg(d, extra, &reinstall, NULL, &out);
        if (r > 0) {
            h->error(h, "rollback: dpkg --install of the previous versions exited with %d: %s", r,
                     deb_tail(&out, 700));
            r = locked(&out) ? MOLT_ETEMP : MOLT_EMODULE;
        }
        deb_buf_free(&out);
    }
    free(reinstall.v);   /* the file strings belong to plan */
    deb_list_free(&db);
    free(plan);
    plan = NULL;
    if (r == 0)
        r = audit(d, "after the rollback");
    /* check: every package of the plan has its previous version again (or is gone) */
    if (r == 0 && (r = kv_text(d, DEB_KV_PLAN, &plan)) == 0 && (r = deb_db_load(d, &db)) == 0) {
        for (char *save = NULL, *line = strtok_r(plan, "\n", &save); line && r == 0;
             line = strtok_r(NULL, "\n", &save)) {
            char *name, *version, *file;
            if (!plan_fields(line, &name, &version, &file))
                continue;
            const deb_pkg *now = deb_list_find(&db, name);
            bool ok = strcmp(version, "-") == 0
                          ? now == NULL
                          : now && strcmp(now->status, "ii ") == 0 && strcmp(now->version, version) == 0;
            if (!ok) {
                h->error(h, "after the rollback %s is %s %s, expected %s", name,
                         now ? now->status : "absent", now ? now->version : "",
                         strcmp(version, "-") == 0 ? "absent" : version);
                r = MOLT_EMODULE;
            }
        }
    }
    deb_list_free(&db);
    free(plan);
    if (r == 0 && (r = h->kv_delete(h, DEB_KV_PLAN)) == 0 &&
        previous_dir(d, prev, sizeof prev) == 0)
        r = remove_tree(d, prev);
    if (r == 0)
        molt_sdk_log_info(h, "rollback complete: the packages of the update are as before");
    return r;
}

/* ArtifactCommit: records the commit. The previous versions are dropped by Cleanup, not here: a
 * power cut during ArtifactCommit sends molt down the rollback path (module.h), which needs them. */
static int artifact_commit(void *st)
{
    deb_ctx *d = st;
    return d->host->kv_set(d->host, DEB_KV_COMMITTED, "1", 1);
}

/* NeedsArtifactReboot: only when the meta-data says {"reboot": true}. */
static int needs_artifact_reboot(void *st)
{
    deb_ctx *d = st;
    int reboot = 0;
    if (molt_sdk_json_bool(d->host->meta_data(d->host), "/reboot", &reboot, NULL) < 0)
        reboot = 0;
    return reboot ? MOLT_MODULE_REBOOT_YES : MOLT_MODULE_REBOOT_NO;
}

/* ArtifactReboot / ArtifactRollbackReboot: the configured reboot_command (default "reboot"). */
static int reboot_device(void *st)
{
    deb_ctx *d = st;
    const char *cmd = d->host->config_get(d->host, "reboot_command");
    const char *argv[] = {"sh", "-c", cmd ? cmd : "reboot", NULL};
    int r = deb_run(d, argv, NULL, false, NULL);
    if (r > 0) {
        d->host->error(d->host, "%s exited with %d", argv[2], r);
        r = MOLT_EMODULE;
    }
    return r;
}

/* Cleanup: the staged list (tmp_dir() goes with the deployment); leftover repacks without a
 * plan (a crash before the plan was written). */
static int cleanup(void *st)
{
    deb_ctx *d = st;
    char prev[4096], flag[4];
    size_t len;
    int r = d->host->kv_delete(d->host, DEB_KV_PAYLOAD);
    /* after a commit the plan goes first, then the previous versions, then the mark: a cut
     * anywhere in between repeats what is left */
    bool committed = d->host->kv_get(d->host, DEB_KV_COMMITTED, flag, sizeof flag, &len) == 0;
    if (r == 0 && committed)
        r = d->host->kv_delete(d->host, DEB_KV_PLAN);
    if (r == 0 && d->host->kv_get(d->host, DEB_KV_PLAN, flag, 0, &len) == MOLT_ENOTFOUND &&
        previous_dir(d, prev, sizeof prev) == 0)
        r = remove_tree(d, prev);
    if (r == 0 && committed)
        r = d->host->kv_delete(d->host, DEB_KV_COMMITTED);
    return r;
}

static const char *const types[] = {"deb", NULL};

static const struct molt_module_desc desc = {
    MOLT_MODULE_V1_MINOR(1),   /* fills no descriptor field of 1.2: loads in 1.1 hosts too */
    .name = "deb",
    .version = "1.0.0",
    .payload_types = types,
    .capabilities = MOLT_CAP_STREAMING | MOLT_CAP_ROLLBACK,
    .init = init,
    .fini = fini,
    .download = download,
    .artifact_install = artifact_install,
    .needs_artifact_reboot = needs_artifact_reboot,
    .artifact_reboot = reboot_device,
    .artifact_commit = artifact_commit,
    .artifact_rollback = artifact_rollback,
    .artifact_rollback_reboot = reboot_device,
    .cleanup = cleanup,
};

const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
