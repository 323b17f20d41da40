/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's control socket (control.h): the listening side, the line protocol, the client. */
#include "state/control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include "util/fs.h"
#include "util/log.h"

static const struct {
    const char *word;
    molt_control_cmd cmd;
} commands[] = {
    {"check-update", MOLT_CONTROL_CHECK_UPDATE},
    {"send-inventory", MOLT_CONTROL_SEND_INVENTORY},
};

molt_control_cmd molt_control_parse(const char *line, size_t len)
{
    size_t n = 0;
    while (n < len && line[n] != '\r' && line[n] != '\n')
        n++;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strlen(commands[i].word) == n && memcmp(commands[i].word, line, n) == 0)
            return commands[i].cmd;
    return MOLT_CONTROL_UNKNOWN;
}

const char *molt_control_answer(molt_control_cmd cmd, long uid)
{
    if (uid != 0)
        return "error only root may control molt\n";
    return cmd == MOLT_CONTROL_UNKNOWN ? "error unknown command\n" : "ok\n";
}

int molt_control_listen(const char *path, int *ret_fd, molt_err *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return molt_err_set(err, MOLT_ECONFIG, "server.control_socket %s: longer than %zu "
                            "characters", path, sizeof addr.sun_path - 1);
    memcpy(addr.sun_path, path, strlen(path));
    char *dir = strdup(path);
    if (!dir)
        return molt_err_set(err, MOLT_ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    int r = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        r = molt_mkdir_p(dir, 0755, err);
    }
    free(dir);
    if (r < 0)
        return r;
    if (unlink(path) != 0 && errno != ENOENT)
        return molt_err_errno(err, MOLT_EIO, errno, "removing the old control socket %s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "control socket");
    /* Created 0600 from the start: no instant where others could connect. */
    mode_t old = umask(0177);
    int b = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (b != 0 || listen(fd, 8) != 0) {
        r = molt_err_errno(err, MOLT_EIO, errno, "control socket %s", path);
        close(fd);
        return r;
    }
    *ret_fd = fd;
    return 0;
}

molt_control_cmd molt_control_serve(int fd)
{
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return MOLT_CONTROL_UNKNOWN;
    struct ucred cred;
    socklen_t clen = sizeof cred;
    char buf[MOLT_CONTROL_MAX + 1];
    struct timeval tv = {.tv_sec = 2};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* The line first (so a refused client is not cut off while it writes), then who sent it.
     * One line; read until its newline (or EOF), bounded by the buffer and SO_RCVTIMEO. */
    size_t got = 0;
    while (got < MOLT_CONTROL_MAX && !memchr(buf, '\n', got)) {
        ssize_t n = read(c, buf + got, MOLT_CONTROL_MAX - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    molt_control_cmd cmd = molt_control_parse(buf, got);
    long uid = getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 ? (long)cred.uid : -1L;
    const char *answer = molt_control_answer(cmd, uid);
    /* For the log: the line up to its end, or the first 32 bytes of what a stranger sent. */
    buf[got] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (uid != 0)
        molt_log_warning("control socket: refused \"%.32s\" from uid %ld (root only)", buf, uid);
    else
        molt_log_info("control socket: %s: %s", buf, answer);
    if (send(c, answer, strlen(answer), MSG_NOSIGNAL) < 0)
        molt_log_debug("control socket: the client left before the answer");
    close(c);
    return uid == 0 ? cmd : MOLT_CONTROL_UNKNOWN;
}

int molt_control_request(const char *path, const char *command, molt_err *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return molt_err_set(err, MOLT_ECONFIG, "server.control_socket %s: too long", path);
    memcpy(addr.sun_path, path, strlen(path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return molt_err_errno(err, MOLT_EIO, errno, "control socket");
    int r = 0;
    char buf[MOLT_CONTROL_MAX + 1];
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        r = molt_err_errno(err, e == ENOENT || e == ECONNREFUSED ? MOLT_ENOTFOUND
                                : e == EACCES || e == EPERM      ? MOLT_EINVAL
                                                                 : MOLT_EIO,
                           e, "cannot reach the molt daemon at %s%s", path,
                           e == EACCES ? " (only root may control molt)" : "");
        goto out;
    }
    int len = snprintf(buf, sizeof buf, "%s\n", command);
    if (len < 0 || (size_t)len >= sizeof buf) {
        r = molt_err_set(err, MOLT_EINVAL, "control command too long: %s", command);
        goto out;
    }
    /* One send, without SIGPIPE: a daemon that answers and closes early must not kill us. */
    if (send(fd, buf, (size_t)len, MSG_NOSIGNAL) != len) {
        r = molt_err_errno(err, MOLT_EIO, errno, "sending %s to the molt daemon", command);
        goto out;
    }
    shutdown(fd, SHUT_WR);
    ssize_t n = read(fd, buf, MOLT_CONTROL_MAX);
    buf[n > 0 ? n : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
    if (strcmp(buf, "ok") != 0)
        r = molt_err_set(err, MOLT_EINVAL, "the molt daemon refused %s: %s", command,
                         n > 0 ? (strncmp(buf, "error ", 6) == 0 ? buf + 6 : buf)
                               : "no answer");
out:
    close(fd);
    return r;
}
