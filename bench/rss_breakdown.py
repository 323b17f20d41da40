#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Peak RSS of a command, broken down by mapping.

Runs CMD, reads /proc/<pid>/smaps every few milliseconds and keeps the snapshot with the highest
total Rss; prints that snapshot grouped by mapping (each shared library, heap, anonymous
mappings incl. malloc arenas and thread stacks, the program itself) with Rss, Private_Dirty and
Size, then the kernel's peak (ru_maxrss of the child, as GNU time %M). Not part of ctest.

Short-lived commands (molt version) end before a sample is taken: with --at-exit, a small
preloaded library (compiled here with cc) copies /proc/self/smaps when the program exits (its
last destructor), which for those commands is their peak (everything mapped, nothing unmapped).

The kernel's peak is VmHWM of the process after exec (ru_maxrss would include the forked Python).

With --anon, each anonymous mapping (and the heap) is also listed with its address and size.

Usage: bench/rss_breakdown.py [--interval-ms N] [--at-exit] [--anon] -- CMD [ARGS...]
"""
import os
import re
import subprocess
import sys
import tempfile
import time

HDR = re.compile(r'^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$')


def read_smaps(pid):
    maps = []
    try:
        with open(f'/proc/{pid}/smaps') as f:
            cur = None
            for line in f:
                m = HDR.match(line)
                if m:
                    cur = {'start': int(m.group(1), 16), 'end': int(m.group(2), 16),
                           'perms': m.group(3), 'name': m.group(4).strip()}
                    maps.append(cur)
                elif cur is not None and ':' in line:
                    k, v = line.split(':', 1)
                    v = v.strip()
                    if v.endswith(' kB'):
                        cur[k] = int(v[:-3])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return maps


PRELOAD_C = r"""
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((destructor(101))) static void dump(void)
{
    const char *out = getenv("RSS_BREAKDOWN_OUT");
    char buf[65536];
    ssize_t n;
    int in = open("/proc/self/smaps", O_RDONLY), fd;
    if (!out || in < 0 || (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
        return;
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n)
            break;
    close(fd);
    close(in);
    if ((in = open("/proc/self/status", O_RDONLY)) >= 0) {
        fd = open(out, O_WRONLY | O_APPEND);
        while (fd >= 0 && (n = read(in, buf, sizeof buf)) > 0)
            if (write(fd, buf, (size_t)n) != n)
                break;
        close(fd);
        close(in);
    }
}
"""


def hwm(pid):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def parse_smaps_text(text):
    maps, cur, peak = [], None, 0
    for line in text.splitlines():
        m = HDR.match(line)
        if m:
            cur = {'start': int(m.group(1), 16), 'end': int(m.group(2), 16),
                   'perms': m.group(3), 'name': m.group(4).strip()}
            maps.append(cur)
        elif line.startswith('VmHWM:'):
            peak = int(line.split()[1])
        elif cur is not None and ':' in line:
            k, v = line.split(':', 1)
            v = v.strip()
            if v.endswith(' kB'):
                cur[k] = int(v[:-3])
    return maps, peak


def run_at_exit(args):
    with tempfile.TemporaryDirectory() as tmp:
        src, lib, out = (os.path.join(tmp, n) for n in ('d.c', 'd.so', 'smaps'))
        with open(src, 'w') as f:
            f.write(PRELOAD_C)
        subprocess.run(['cc', '-O2', '-shared', '-fPIC', '-o', lib, src], check=True)
        env = dict(os.environ, LD_PRELOAD=lib, RSS_BREAKDOWN_OUT=out)
        rc = subprocess.run(args, stdout=subprocess.DEVNULL, env=env).returncode
        with open(out) as f:
            maps, peak = parse_smaps_text(f.read())
    return maps, peak, rc


def group(m, prev):
    name = m['name']
    if name == '[heap]':
        return '[heap] (main arena)'
    if name.startswith('['):
        return name
    if name:
        return os.path.basename(name)
    # anonymous: a guard page followed by a mapping is a thread stack; 64 MiB-aligned regions
    # reserved by glibc are a secondary malloc arena
    if prev is not None and prev['end'] == m['start'] and prev['perms'] == '---p' and \
            not prev['name'] and m['end'] - m['start'] <= 16 << 20 and \
            m['perms'] == 'rw-p' and (m['end'] - m['start']) % 4096 == 0 and \
            m['Size'] in (8192, 8188, 2048, 1024, 512, 256, 128, 4096):
        return '[thread stack]'
    if m['perms'] == '---p':
        return '[anon, reserved ---p]'
    if (m['start'] % (64 << 20)) == 0:
        return '[anon: malloc arena (thread)]'
    return '[anon]'


def main():
    args = sys.argv[1:]
    interval = 0.005
    if args[:1] == ['--interval-ms']:
        interval = int(args[1]) / 1000
        args = args[2:]
    at_exit = args[:1] == ['--at-exit']
    if at_exit:
        args = args[1:]
    global LIST_ANON
    LIST_ANON = args[:1] == ['--anon']
    if LIST_ANON:
        args = args[1:]
    if args[:1] == ['--']:
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    if at_exit:
        best, peak, rc = run_at_exit(args)
        best_rss = sum(m.get('Rss', 0) for m in best)
        report(best, best_rss, peak, rc)
        return 0
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    best, best_rss, peak = None, -1, 0
    while True:
        peak = max(peak, hwm(p.pid))
        maps = read_smaps(p.pid)
        if maps:
            rss = sum(m.get('Rss', 0) for m in maps)
            if rss > best_rss:
                best, best_rss = maps, rss
        try:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            break
        time.sleep(interval)
    report(best, best_rss, peak, os.waitstatus_to_exitcode(status))
    return 0


LIST_ANON = False


def report(best, best_rss, peak, rc):
    if LIST_ANON:
        for m in best or []:
            if (not m['name'] or m['name'] == '[heap]') and m.get('Rss', 0):
                print(f"{m['start']:x}-{m['end']:x} {m['perms']} {m['name'] or 'anon':<8} "
                      f"Size {m['Size']:>6} Rss {m['Rss']:>6} KiB")
    rows = {}
    prev = None
    for m in best or []:
        g = group(m, prev)
        r = rows.setdefault(g, [0, 0, 0])
        r[0] += m.get('Rss', 0)
        r[1] += m.get('Private_Dirty', 0)
        r[2] += m.get('Size', 0)
        prev = m
    print(f'{"mapping":<44} {"Rss KiB":>9} {"PrivDirty":>9} {"Size KiB":>9}')
    for g, (rss, pd, size) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        print(f'{g:<44} {rss:>9} {pd:>9} {size:>9}')
    print(f'{"total at the sampled peak":<44} {best_rss:>9}')
    print(f'{"kernel peak (VmHWM)":<44} {peak:>9}')
    print(f'exit status {rc}')


if __name__ == '__main__':
    sys.exit(main())
