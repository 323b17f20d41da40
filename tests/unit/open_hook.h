/* SPDX-License-Identifier: Apache-2.0 */
/* An open() of the test program that tells the test about every call before making it (molt-core
 * is linked in statically, so molt's own opens come here): the including file defines
 * open_seen(path, flags) to count what it asserts on. Include it in one file per program. */
#ifndef MOLT_TEST_OPEN_HOOK_H
#define MOLT_TEST_OPEN_HOOK_H

#include <fcntl.h>
#include <stdarg.h>
#include <unistd.h>
#include <sys/syscall.h>

static void open_seen(const char *path, int flags);

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    open_seen(path, flags);
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

#endif
