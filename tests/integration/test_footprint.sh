# SPDX-License-Identifier: Apache-2.0
# What molt maps into its own process (docs/performance.md):
#  - with libarchive linked statically (MOLT_LIBARCHIVE=static, or auto with libarchive.a found:
#    the build's CMakeCache says which), molt, molt-artifact and the file module (file.so and its
#    tar support file.d/file-tar.so) need neither libarchive.so nor libxml2 (and so no ICU, no
#    libstdc++); linked shared, they need libarchive.so;
#  - with libyaml and zlib linked statically (MOLT_LIBYAML, MOLT_ZLIB: static by default), molt
#    needs neither libyaml nor libz: jansson and libc are all it maps at start; molt-artifact no
#    libz; the file module's tar support, a shared object, still needs libz.so (Debian's libz.a
#    is not PIC); linked shared, molt needs them;
#  - listing the native modules loads each in a child process: the docker module's libcurl is
#    loaded by that child (LD_DEBUG shows it under the child's pid), never by molt itself;
#  - molt does not link libcrypto (core/util/crypto_lib.c loads it at its first use): `molt
#    version` never maps it;
#  - nor liblzma and libzstd (core/util/compress_lib.c loads them for the first xz or zstd tar):
#    molt and molt-artifact need neither when libarchive is linked statically, `molt version`,
#    the install of a gzip artifact and `molt status` load neither, an xz install loads liblzma
#    and not libzstd;
#  - an unsigned install whose files are all small (up to MOLT_SHA256_SMALL_MAX, 64 KiB:
#    core/util/sha256.h) hashes them in-tree on molt's own thread: `molt install` of a 1 KiB
#    single-file artifact with the native file module opens no libcrypto and starts no thread
#    (strace); a 100 KiB file is hashed by libcrypto on the reader's hashing thread;
#  - with its control files first, its install + commit makes the fsync-family calls
#    docs/performance.md argues, no more, and loads no libcrypto either.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

needed() {  # FILE: its DT_NEEDED libraries, one a line
    readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

cache="$MOLT_BUILD_DIR/CMakeCache.txt"
native="$MOLT_BUILD_DIR/modules/native"
linked=$(sed -n 's/^MOLT_LIBARCHIVE_LINKED:INTERNAL=//p' "$cache")
if [ "$linked" = static ]; then
    for f in "$MOLT" "$MOLT_ARTIFACT" "$native/file.so" "$native/file.d/file-tar.so"; do
        [ -f "$f" ] || continue
        libs=$(needed "$f")
        [ -n "$libs" ] || fail "no NEEDED entries read from $f"
        if grep -E '^lib(archive|xml2|icu|stdc\+\+)' <<<"$libs"; then
            fail "$f needs the libraries above (libarchive is meant to be linked statically)"
        fi
    done
    for f in "$MOLT" "$MOLT_ARTIFACT"; do
        if needed "$f" | grep -E '^lib(lzma|zstd)'; then
            fail "$f needs the libraries above (loaded on demand: core/util/compress_lib.h)"
        fi
    done
    pass "static libarchive: molt, molt-artifact and the file module need no libarchive.so or libxml2; molt and molt-artifact no liblzma or libzstd"
else
    assert_eq shared "$linked" "MOLT_LIBARCHIVE_LINKED in $cache"
    needed "$MOLT" | grep -q '^libarchive\.so' || fail "$MOLT does not need libarchive.so"
    pass "shared libarchive: molt needs libarchive.so (the static check applies to static builds)"
fi

for lib in libyaml:LIBYAML libz:ZLIB; do
    so=${lib%%:*} linked=$(sed -n "s/^MOLT_${lib#*:}_LINKED:INTERNAL=//p" "$cache")
    if [ "$linked" = static ]; then
        if needed "$MOLT" | grep "^$so[-.]"; then
            fail "$MOLT needs the library above (MOLT_${lib#*:}=static)"
        fi
        [ "$so" = libyaml ] || ! needed "$MOLT_ARTIFACT" | grep "^$so[-.]" ||
            fail "$MOLT_ARTIFACT needs the library above (MOLT_${lib#*:}=static)"
    else
        assert_eq shared "$linked" "MOLT_${lib#*:}_LINKED in $cache"
        needed "$MOLT" | grep -q "^$so[-.]" || fail "$MOLT does not need $so (linked shared)"
    fi
    pass "$so linked $linked: molt's NEEDED entries agree"
done
if [ "$(sed -n 's/^MOLT_LIBYAML_LINKED:INTERNAL=//p' "$cache")" = static ] &&
    [ "$(sed -n 's/^MOLT_ZLIB_LINKED:INTERNAL=//p' "$cache")" = static ] &&
    [ "$(sed -n 's/^MOLT_LIBARCHIVE_LINKED:INTERNAL=//p' "$cache")" = static ]; then
    # (a sanitizer build adds its runtime's libraries)
    own='libc\.so\.6|libjansson\.so\.4'
    if [ "$(sed -n 's/^MOLT_SANITIZE:BOOL=//p' "$cache")" = ON ]; then
        own+='|lib(asan|ubsan)\.so\..*|libm\.so\.6|libgcc_s\.so\.1|libstdc\+\+\.so\..*'
    fi
    if needed "$MOLT" | grep -Ev "^($own)\$"; then
        fail "$MOLT needs the libraries above (libarchive, libyaml and zlib linked statically)"
    fi
    needed "$MOLT" | grep -qx 'libjansson\.so\.4' || fail "$MOLT does not need libjansson"
    if [ -f "$native/file.d/file-tar.so" ]; then
        needed "$native/file.d/file-tar.so" | grep -q '^libz\.so' ||
            fail "file-tar.so does not need libz.so (a module takes zlib shared)"
    fi
    pass "static libarchive, libyaml and zlib: molt needs jansson and libc only; file-tar.so libz"
fi

needed "$MOLT" | grep '^lib\(crypto\|ssl\|curl\)' && fail "$MOLT links the libraries above"
LD_DEBUG=files "$MOLT" version >/dev/null 2>"$T/ld-version.log" || fail "molt version failed"
grep -q "file=libc\.so" "$T/ld-version.log" || fail "no LD_DEBUG output from molt version"
if grep -E "file=lib(crypto|lzma|zstd)" "$T/ld-version.log"; then
    fail "molt version loaded the libraries above"
fi
pass "molt links no libcrypto, libssl or libcurl, and molt version loads no libcrypto, liblzma or libzstd"

if [ -f "$native/docker.so" ] && needed "$native/docker.so" | grep -q '^libcurl'; then
    device_new probe
    mkdir -p "$DEV/native"
    cp "$native/docker.so" "$DEV/native/"
    device_config "native_module_dir: $DEV/native"
    LD_DEBUG=files "$MOLT" --config "$DEV_CONF" modules >"$T/modules.out" 2>"$T/ld.log" ||
        fail "molt modules: $(tail -n 5 "$T/ld.log")"
    grep -q '^docker ' "$T/modules.out" || fail "docker module not listed: $(cat "$T/modules.out")"
    # The first pid in LD_DEBUG's output is molt's (it starts before any child).
    molt_pid=$(sed -n 's/^ *\([0-9][0-9]*\):.*/\1/p' "$T/ld.log" | head -n 1)
    [ -n "$molt_pid" ] || fail "no LD_DEBUG output"
    grep -E "^ *[0-9]+:.*file=libcurl" "$T/ld.log" | grep -qv "^ *$molt_pid:" ||
        fail "libcurl was not loaded by a probe child"
    if grep -E "^ *$molt_pid:.*file=(libcurl|.*docker\.so)" "$T/ld.log"; then
        fail "molt itself loaded the docker module or libcurl to list the modules"
    fi
    pass "listing native modules: docker.so and libcurl load in a child, never in molt"
else
    echo "skip: no docker module linking libcurl in this build"
fi

# Small and large files through the native file module, unsigned (no artifact_verify_keys).
command -v strace >/dev/null || fail "strace is not installed (tools/deps.sh installs it)"
# LeakSanitizer cannot stop the world of a traced process (as in test_log_sync.sh).
[ "${MOLT_SANITIZE:-}" != ON ] || export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
device_new hashing
mkdir -p "$DEV/native"
cp "$native/file.so" "$DEV/native/"
device_config "native_module_dir: $DEV/native" "modules:" "  file:" "    allowed_roots:" \
    "      - $DEV_DEST"
mkdir -p "$T/src"
printf '%s' "$DEV_DEST" >"$T/src/dest_dir"
printf 'app.conf' >"$T/src/filename"
# traced_install SIZE [COMPRESSION]: install (and commit) a single-file artifact of SIZE random
# bytes (mender-artifact's compression, gzip by default) under strace; the trace of molt's own
# process (not its children) in $T/SIZE.molt
traced_install() {
    head -c "$1" /dev/urandom >"$T/src/app.conf"
    (cd "$T/src" && make_artifact "$T/$1.mender" "size-$1" single-file -f app.conf -f dest_dir \
        -f filename --compression "${2:-gzip}")
    run_prog "$(command -v strace)" -f -e trace=openat,clone,clone3 -o "$T/$1.trace" \
        "$MOLT" --config "$DEV_CONF" install "$T/$1.mender"
    expect_rc 0 "install of a $1-byte file under strace"
    cmp -s "$T/src/app.conf" "$DEV_DEST/app.conf" || fail "the $1-byte file was not installed"
    molt_dev commit
    expect_rc 0 "commit of the $1-byte file"
    local pid
    pid=$(sed -n '1s/^\([0-9][0-9]*\) .*/\1/p' "$T/$1.trace")
    [ -n "$pid" ] || fail "no strace output: $(head -c 400 "$T/$1.trace")"
    grep "^$pid " "$T/$1.trace" >"$T/$1.molt"
    grep -q 'file\.so' "$T/$1.molt" || fail "the trace shows no file module: $(head -c 400 "$T/$1.trace")"
}
traced_install 1024
if grep 'libcrypto' "$T/1024.molt"; then
    fail "molt install of a small unsigned artifact loaded libcrypto"
fi
if grep 'CLONE_THREAD' "$T/1024.molt"; then
    fail "molt install of a small unsigned artifact started a thread"
fi
if grep -E 'lib(lzma|zstd)' "$T/1024.molt"; then
    fail "molt install of a gzip artifact loaded liblzma or libzstd"
fi
LD_DEBUG=files "$MOLT" --config "$DEV_CONF" status >/dev/null 2>"$T/ld-status.log" ||
    fail "molt status failed: $(tail -n 5 "$T/ld-status.log")"
grep -q "file=libc\.so" "$T/ld-status.log" || fail "no LD_DEBUG output from molt status"
if grep -E "file=lib(crypto|lzma|zstd)" "$T/ld-status.log"; then
    fail "molt status loaded the libraries above"
fi
pass "a gzip install and molt status load no liblzma or libzstd"
# The fsync-family calls of one install + commit of a 1 KiB file, its control files first (the
# data streamed next to its destination; the registry cache and the store already there), as
# bench/small_update.sh counts them: the argument of each is in docs/performance.md ("fsyncs per
# install"). Neither loads libcrypto (the file module's plan and commit mark are deployment
# values, hex in the store: molt's base64 is libcrypto's).
sync_count() {  # COMMAND...: the fsync-family calls of molt COMMAND
    run_prog "$(command -v strace)" -f -e trace=fsync,fdatasync,sync_file_range,syncfs,openat \
        -o "$T/syncs.trace" "$MOLT" --config "$DEV_CONF" "$@"
    expect_rc 0 "molt $* under strace"
    if grep -q 'openat(.*libcrypto' "$T/syncs.trace"; then
        fail "molt $* of a 1 KiB file loaded libcrypto"
    fi
    grep -cE '^[0-9]+ +(fsync|fdatasync|sync_file_range|syncfs)\(' "$T/syncs.trace" || true
}
head -c 1024 /dev/urandom >"$T/src/app.conf"
(cd "$T/src" && make_artifact "$T/syncs.mender" syncs-1 single-file -f dest_dir -f filename -f app.conf)
assert_eq 4 "$(sync_count install "$T/syncs.mender")" "fsync-family calls of molt install (1 KiB file)"
assert_eq 1 "$(sync_count commit)" "fsync-family calls of molt commit (1 KiB file)"
cmp -s "$T/src/app.conf" "$DEV_DEST/app.conf" || fail "the counted install did not install the file"
pass "one install + commit of a 1 KiB file: 4 + 1 fsync-family calls, no libcrypto"
traced_install 100000
grep -q 'openat(.*libcrypto\.so' "$T/100000.molt" ||
    fail "a 100000-byte file was not hashed by libcrypto (not opened)"
grep -q 'CLONE_THREAD' "$T/100000.molt" || fail "a 100000-byte file started no hashing thread"
pass "an unsigned install of a 1 KiB file loads no libcrypto and starts no thread; a 100 KB file uses both"
traced_install 2048 lzma
grep -q 'openat(.*liblzma\.so' "$T/2048.molt" || fail "an xz install did not load liblzma"
if grep 'libzstd' "$T/2048.molt"; then
    fail "an xz install loaded libzstd"
fi
pass "an xz install loads liblzma (and not libzstd)"
