/* SPDX-License-Identifier: Apache-2.0 */
/* The deb module's dpkg side: child processes (dpkg, dpkg-query, dpkg-deb, dpkg-repack), the
 * status database of the root, Debian version comparison and the dependency check. */
#include "deb.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

extern char **environ;

#define DEB_PATH_DEFAULT "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

void deb_buf_free(deb_buf *b)
{
    if (b) {
        free(b->data);
        b->data = NULL;
        b->len = 0;
    }
}

const char *deb_tail(const deb_buf *b, size_t max)
{
    if (!b || !b->data)
        return "";
    size_t len = b->len;
    while (len > 0 && b->data[len - 1] == '\n')
        b->data[--len] = '\0';
    if (len <= max)
        return b->data;
    const char *p = b->data + len - max;
    const char *nl = strchr(p, '\n');
    return nl ? nl + 1 : p;
}

/* The environment for children: ours with a PATH holding the sbin folders dpkg insists on. */
static char **child_env(char *pathbuf, size_t cap)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 3, sizeof *env);
    if (!env)
        return NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        snprintf(pathbuf, cap, "PATH=%s", DEB_PATH_DEFAULT);
    else if (!strstr(path, "/usr/sbin") || !strstr(path, ":/sbin"))
        snprintf(pathbuf, cap, "PATH=%s:%s", path, DEB_PATH_DEFAULT);
    else
        snprintf(pathbuf, cap, "PATH=%s", path);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "PATH=", 5) != 0 && strncmp(environ[i], "DEBIAN_FRONTEND=", 16) != 0)
            env[k++] = environ[i];
    env[k++] = pathbuf;
    env[k++] = (char *)"DEBIAN_FRONTEND=noninteractive";
    env[k] = NULL;
    return env;
}

/* argv0 looked up in the PATH= entry pathvar. */
static int find_program(const char *pathvar, const char *argv0, char *buf, size_t cap)
{
    if (strchr(argv0, '/')) {
        snprintf(buf, cap, "%s", argv0);
        return access(buf, X_OK) == 0 ? 0 : MOLT_ENOTFOUND;
    }
    const char *p = pathvar + 5;
    while (*p) {
        size_t len = strcspn(p, ":");
        snprintf(buf, cap, "%.*s/%s", (int)len, p, argv0);
        if (len > 0 && access(buf, X_OK) == 0)
            return 0;
        p += len;
        if (*p == ':')
            p++;
    }
    return MOLT_ENOTFOUND;
}

static void log_lines(deb_ctx *d, char *text)
{
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        molt_sdk_log_info(d->host, "%s", line);
}

int deb_run(deb_ctx *d, const char *const argv[], const char *cwd, bool quiet_stderr,
            deb_buf *out)
{
    const struct molt_host_api *h = d->host;
    char pathbuf[4096], prog[4096];
    char **env = child_env(pathbuf, sizeof pathbuf);
    int fds[2] = {-1, -1}, rc;
    deb_buf got = {0};
    if (!env)
        return MOLT_ENOMEM;
    if (find_program(pathbuf, argv[0], prog, sizeof prog) < 0) {
        free(env);
        h->error(h, "%s: not found in PATH (%s)", argv[0], pathbuf + 5);
        return MOLT_ENOTFOUND;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        struct molt_sdk_error e;
        molt_sdk_err_errno(&e, errno, "pipe for %s", argv[0]);
        free(env);
        return molt_sdk_fail(h, &e);
    }
    char cmdline[1024];
    size_t used = 0;
    for (size_t i = 0; argv[i] && used < sizeof cmdline - 1; i++)
        used += (size_t)snprintf(cmdline + used, sizeof cmdline - used, "%s%s", i ? " " : "",
                                 argv[i]);
    if (!quiet_stderr)
        molt_sdk_log_info(h, "running %s", cmdline);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = errno;
        close(fds[0]);
        close(fds[1]);
        free(env);
        h->error(h, "fork for %s: %s", argv[0], strerror(rc));
        return MOLT_EIO;
    }
    if (pid == 0) {
        /* dpkg dies with molt (SIGKILL when the thread that forked ends; a setuid exec clears
         * it). What dpkg started (a maintainer script) carries molt's MOLT_OWNER token in its
         * environment: the next molt ends it before it recovers (docs/deb-module.md). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != parent)
            _exit(126);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(fds[1], 1);
        dup2(quiet_stderr ? null : fds[1], 2);
        closefrom(3);
        signal(SIGPIPE, SIG_DFL);
        if (cwd && chdir(cwd) < 0)
            _exit(126);
        execve(prog, (char *const *)argv, env);
        _exit(127);
    }
    close(fds[1]);
    free(env);
    char chunk[65536];
    rc = 0;
    for (;;) {
        ssize_t n = read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (got.len + (size_t)n > DEB_OUT_MAX)
            continue;   /* drop what exceeds the cap, keep draining */
        char *grown = realloc(got.data, got.len + (size_t)n + 1);
        if (!grown) {
            rc = MOLT_ENOMEM;
            continue;
        }
        got.data = grown;
        memcpy(got.data + got.len, chunk, (size_t)n);
        got.len += (size_t)n;
        got.data[got.len] = '\0';
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc < 0) {
        deb_buf_free(&got);
        h->error(h, "out of memory reading the output of %s", argv[0]);
        return rc;
    }
    if (!got.data && !(got.data = calloc(1, 1)))
        return MOLT_ENOMEM;
    if (WIFEXITED(status))
        rc = WEXITSTATUS(status);
    else
        rc = 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (rc == 127 || rc == 126)
        molt_sdk_log_error(h, "%s could not be started (exit %d)", prog, rc);
    if (!quiet_stderr) {
        char *copy = strdup(got.data);
        if (copy)
            log_lines(d, copy);
        free(copy);
        if (rc != 0)
            molt_sdk_log_warning(h, "%s exited with %d", cmdline, rc);
    }
    if (out)
        *out = got;
    else
        deb_buf_free(&got);
    return rc;
}

void deb_pkg_free(deb_pkg *p)
{
    if (!p)
        return;
    free(p->name);
    free(p->version);
    free(p->arch);
    free(p->status);
    free(p->provides);
    free(p->depends);
    free(p->predepends);
    free(p->conflicts);
    free(p->file);
    memset(p, 0, sizeof *p);
}

void deb_list_free(deb_list *l)
{
    for (size_t i = 0; l && i < l->n; i++)
        deb_pkg_free(&l->v[i]);
    if (l) {
        free(l->v);
        l->v = NULL;
        l->n = 0;
    }
}

deb_pkg *deb_list_find(const deb_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

bool deb_status_installed(const char *status)
{
    return status && strlen(status) >= 2 &&
           (status[1] == 'i' || status[1] == 'W' || status[1] == 't');
}

/* The next tab-separated field of *p (NUL-terminating it), strdup'd. */
static char *next_field(char **p)
{
    char *start = *p, *tab = strchr(start, '\t');
    if (tab) {
        *tab = '\0';
        *p = tab + 1;
    } else {
        *p = start + strlen(start);
    }
    return strdup(start);
}

/* Fill pkg from one line of tab-separated fields (name version arch status provides depends
 * predepends conflicts). */
static int parse_line(char *line, deb_pkg *p)
{
    char *cur = line;
    char **slots[] = {&p->name, &p->version, &p->arch, &p->status,
                      &p->provides, &p->depends, &p->predepends, &p->conflicts};
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (!(*slots[i] = next_field(&cur)))
            return MOLT_ENOMEM;
    return 0;
}

#define DEB_FORMAT                                                                          \
    "${Package}\\t${Version}\\t${Architecture}\\t${db:Status-Abbrev}\\t${Provides}\\t"      \
    "${Depends}\\t${Pre-Depends}\\t${Conflicts}\\n"

int deb_db_load(deb_ctx *d, deb_list *ret)
{
    char admin[1300];
    snprintf(admin, sizeof admin, "--admindir=%s", d->admindir);
    const char *argv[] = {"dpkg-query", admin, "-W", "-f=" DEB_FORMAT, NULL};
    deb_buf out = {0};
    deb_list l = {0};
    int r = deb_run(d, argv, NULL, true, &out);
    if (r < 0)
        return r;
    if (r != 0) {
        d->host->error(d->host, "dpkg-query -W in %s exited with %d", d->admindir, r);
        deb_buf_free(&out);
        return MOLT_EMODULE;
    }
    r = 0;
    for (char *save = NULL, *line = strtok_r(out.data, "\n", &save); line && r == 0;
         line = strtok_r(NULL, "\n", &save)) {
        deb_pkg *grown = realloc(l.v, (l.n + 1) * sizeof *l.v);
        if (!grown) {
            r = MOLT_ENOMEM;
            break;
        }
        l.v = grown;
        memset(&l.v[l.n], 0, sizeof l.v[l.n]);
        r = parse_line(line, &l.v[l.n++]);
    }
    deb_buf_free(&out);
    if (r < 0) {
        deb_list_free(&l);
        return r;
    }
    *ret = l;
    return 0;
}

int deb_control_load(deb_ctx *d, const char *file, deb_pkg *ret)
{
    const char *argv[] = {"dpkg-deb", "--show", "--showformat=" DEB_FORMAT, file, NULL};
    deb_buf out = {0};
    deb_pkg p = {0};
    int r = deb_run(d, argv, NULL, true, &out);
    if (r < 0)
        return r;
    if (r != 0 || out.len == 0) {
        d->host->error(d->host, "%s is not a Debian package (dpkg-deb --show exited with %d)",
                       file, r);
        deb_buf_free(&out);
        return MOLT_EFORMAT;
    }
    out.data[strcspn(out.data, "\n")] = '\0';
    r = parse_line(out.data, &p);
    deb_buf_free(&out);
    if (r == 0 && !(p.file = strdup(file)))
        r = MOLT_ENOMEM;
    if (r == 0 && (!*p.name || !*p.version)) {
        d->host->error(d->host, "%s has no Package or Version field", file);
        r = MOLT_EFORMAT;
    }
    if (r < 0) {
        deb_pkg_free(&p);
        return r;
    }
    *ret = p;
    return 0;
}

/* ---- versions (deb-version(7)) ----------------------------------------------------------------- */

static int order(int c)
{
    if (isdigit(c))
        return 0;
    if (isalpha(c))
        return c;
    if (c == '~')
        return -1;
    if (c)
        return c + 256;
    return 0;
}

/* Compare one upstream or revision part, [a, a_end) against [b, b_end). */
static int part_cmp(const char *a, const char *ae, const char *b, const char *be)
{
    while (a < ae || b < be) {
        int diff = 0;
        while ((a < ae && !isdigit((unsigned char)*a)) || (b < be && !isdigit((unsigned char)*b))) {
            int ac = a < ae ? order((unsigned char)*a) : 0;
            int bc = b < be ? order((unsigned char)*b) : 0;
            if (ac != bc)
                return ac - bc;
            a++;
            b++;
        }
        while (a < ae && *a == '0')
            a++;
        while (b < be && *b == '0')
            b++;
        while (a < ae && isdigit((unsigned char)*a) && b < be && isdigit((unsigned char)*b)) {
            if (!diff)
                diff = *a - *b;
            a++;
            b++;
        }
        if (a < ae && isdigit((unsigned char)*a))
            return 1;
        if (b < be && isdigit((unsigned char)*b))
            return -1;
        if (diff)
            return diff;
    }
    return 0;
}

/* Split v into epoch, upstream [*us, *ue) and revision [*rs, *re). */
static long split_version(const char *v, const char **us, const char **ue, const char **rs,
                          const char **re)
{
    long epoch = 0;
    const char *colon = strchr(v, ':');
    if (colon) {
        epoch = strtol(v, NULL, 10);
        v = colon + 1;
    }
    const char *end = v + strlen(v), *dash = strrchr(v, '-');
    *us = v;
    if (dash) {
        *ue = dash;
        *rs = dash + 1;
    } else {
        *ue = end;
        *rs = end;
    }
    *re = end;
    return epoch;
}

int deb_version_cmp(const char *a, const char *b)
{
    const char *aus, *aue, *ars, *are, *bus, *bue, *brs, *bre;
    long ea = split_version(a, &aus, &aue, &ars, &are);
    long eb = split_version(b, &bus, &bue, &brs, &bre);
    if (ea != eb)
        return ea < eb ? -1 : 1;
    int r = part_cmp(aus, aue, bus, bue);
    return r ? r : part_cmp(ars, are, brs, bre);
}

/* ---- dependencies ------------------------------------------------------------------------------ */

/* One relation "name[:arch] [(op version)]" parsed in place. */
typedef struct relation {
    char name[256], op[3], version[256];
} relation;

static void trim(char **s)
{
    while (isspace((unsigned char)**s))
        (*s)++;
    char *e = *s + strlen(*s);
    while (e > *s && isspace((unsigned char)e[-1]))
        *--e = '\0';
}

static void parse_relation(char *text, relation *rel)
{
    memset(rel, 0, sizeof *rel);
    trim(&text);
    char *paren = strchr(text, '(');
    char *bracket = strchr(text, '[');   /* architecture restrictions: ignored */
    if (bracket)
        *bracket = '\0';
    if (paren) {
        *paren = '\0';
        char *v = paren + 1;
        trim(&v);
        size_t n = 0;
        while (n < 2 && strchr("<>=", v[n]))
            n++;
        memcpy(rel->op, v, n);
        v += n;
        char *close = strchr(v, ')');
        if (close)
            *close = '\0';
        trim(&v);
        snprintf(rel->version, sizeof rel->version, "%s", v);
    }
    trim(&text);
    text[strcspn(text, ": \t")] = '\0';
    snprintf(rel->name, sizeof rel->name, "%s", text);
}

static bool op_holds(const char *op, const char *have, const char *want)
{
    int c = deb_version_cmp(have, want);
    if (!*op)
        return true;
    if (strcmp(op, "<<") == 0)
        return c < 0;
    if (strcmp(op, ">>") == 0)
        return c > 0;
    if (strcmp(op, "=") == 0)
        return c == 0;
    if (strcmp(op, "<=") == 0 || strcmp(op, "<") == 0)
        return c <= 0;
    return c >= 0;   /* ">=", ">" */
}

/* Does pkg (at its version) or one of its Provides satisfy rel? */
static bool pkg_satisfies(const deb_pkg *p, const relation *rel)
{
    if (strcmp(p->name, rel->name) == 0 && op_holds(rel->op, p->version, rel->version))
        return true;
    if (!p->provides || !*p->provides)
        return false;
    char *copy = strdup(p->provides);
    bool ok = false;
    for (char *save = NULL, *item = copy ? strtok_r(copy, ",", &save) : NULL; item && !ok;
         item = strtok_r(NULL, ",", &save)) {
        relation prov;
        parse_relation(item, &prov);
        if (strcmp(prov.name, rel->name) != 0)
            continue;
        ok = !*rel->op || (*prov.version && op_holds(rel->op, prov.version, rel->version));
    }
    free(copy);
    return ok;
}

/* Is rel satisfied on the system as it will be: payload packages, and installed packages the
 * payload does not replace? */
static bool satisfied(const deb_list *db, const deb_list *payload, const relation *rel)
{
    for (size_t i = 0; i < payload->n; i++)
        if (pkg_satisfies(&payload->v[i], rel))
            return true;
    for (size_t i = 0; i < db->n; i++)
        if (deb_status_installed(db->v[i].status) && !deb_list_find(payload, db->v[i].name) &&
            pkg_satisfies(&db->v[i], rel))
            return true;
    return false;
}

/* Check every group of a Depends-style field; only_names (may be NULL) limits the check to
 * groups naming one of these packages. */
static int check_field(const deb_list *db, const deb_list *payload, const char *who,
                       const char *field_name, const char *field, const deb_list *only_names,
                       char *msg, size_t cap)
{
    if (!field || !*field)
        return 0;
    char *copy = strdup(field);
    int r = copy ? 0 : MOLT_ENOMEM;
    for (char *save = NULL, *group = copy ? strtok_r(copy, ",", &save) : NULL; group && r == 0;
         group = strtok_r(NULL, ",", &save)) {
        char text[DEB_FIELD_MAX];
        snprintf(text, sizeof text, "%s", group);
        char *shown = text;
        trim(&shown);
        bool ok = false, relevant = only_names == NULL;
        for (char *s2 = NULL, *alt = strtok_r(group, "|", &s2); alt && !ok;
             alt = strtok_r(NULL, "|", &s2)) {
            relation rel;
            parse_relation(alt, &rel);
            if (only_names && deb_list_find(only_names, rel.name))
                relevant = true;
            ok = satisfied(db, payload, &rel);
        }
        if (relevant && !ok) {
            snprintf(msg, cap, "%s %s: %s, which %s", who, field_name, shown,
                     only_names ? "the payload's versions would break"
                                : "neither the payload nor the installed packages satisfy");
            r = MOLT_EDEPENDS;
        }
    }
    free(copy);
    return r;
}

int deb_check_depends(const deb_list *db, const deb_list *payload, char *msg, size_t cap)
{
    int r = 0;
    for (size_t i = 0; i < payload->n && r == 0; i++) {
        const deb_pkg *p = &payload->v[i];
        char who[600];
        snprintf(who, sizeof who, "package %s %s", p->name, p->version);
        r = check_field(db, payload, who, "Pre-Depends", p->predepends, NULL, msg, cap);
        if (r == 0)
            r = check_field(db, payload, who, "Depends", p->depends, NULL, msg, cap);
    }
    /* installed packages (not replaced) whose dependency on a payload package would break */
    for (size_t i = 0; i < db->n && r == 0; i++) {
        const deb_pkg *p = &db->v[i];
        if (!deb_status_installed(p->status) || deb_list_find(payload, p->name))
            continue;
        char who[600];
        snprintf(who, sizeof who, "installed package %s %s", p->name, p->version);
        r = check_field(db, payload, who, "Pre-Depends", p->predepends, payload, msg, cap);
        if (r == 0)
            r = check_field(db, payload, who, "Depends", p->depends, payload, msg, cap);
    }
    return r;
}

size_t deb_conflicting(const deb_list *db, const deb_list *payload, const deb_pkg **ret,
                       size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < payload->n; i++) {
        const char *field = payload->v[i].conflicts;
        char *copy = field && *field ? strdup(field) : NULL;
        for (char *save = NULL, *item = copy ? strtok_r(copy, ",", &save) : NULL; item;
             item = strtok_r(NULL, ",", &save)) {
            relation rel;
            parse_relation(item, &rel);
            deb_pkg *old = deb_list_find(db, rel.name);
            if (!old || !deb_status_installed(old->status) || deb_list_find(payload, old->name) ||
                !op_holds(rel.op, old->version, rel.version))
                continue;
            bool seen = false;
            for (size_t k = 0; k < n; k++)
                seen = seen || ret[k] == old;
            if (!seen && n < cap)
                ret[n++] = old;
        }
        free(copy);
    }
    return n;
}
