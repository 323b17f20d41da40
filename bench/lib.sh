# SPDX-License-Identifier: Apache-2.0
# Shared by the benchmarks (sourced, after `top` is set): the build, the median and a molt
# device for the file-module benches (data dir, the file module alone in the native module dir).

# Sets build (absolute), molt and molt_artifact: MOLT_BUILD_DIR as it is, or a RelWithDebInfo
# build in build/bench made here of the targets named (molt and molt-artifact always), with
# libarchive linked statically (the device build docs/performance.md measures).
bench_build() {  # TARGET...
    build=${MOLT_BUILD_DIR:-$top/build/bench}
    mkdir -p "$build"
    build=$(cd "$build" && pwd)
    if [ -z "${MOLT_BUILD_DIR:-}" ]; then
        cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOLT_BUILD_TESTS=OFF \
            -DMOLT_SANITIZE=OFF -DMOLT_LIBARCHIVE=static >/dev/null
        cmake --build "$build" -j "$(nproc)" --target molt molt-artifact "$@" >/dev/null
    fi
    molt_artifact="$build/sdk/artifact/molt-artifact"
    molt="$build/core/molt"
}

# bench_build for the file module; also sets file_so.
bench_build_file() {
    bench_build file
    file_so="$build/modules/native/file.so"
    [ -x "$molt" ] && [ -f "$file_so" ] && [ -x "$molt_artifact" ] ||
        { echo "no molt or file.so in $build" >&2; exit 1; }
}

# The median of the numbers on stdin, one a line.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Copy the file module of file_so into DIR as it is installed: file.so and, when the build has it
# (since the tar support left file.so), its tar support file.d/file-tar.so beside it.
bench_copy_file_module() {  # DIR
    cp "$file_so" "$1/"
    if [ -d "$(dirname "$file_so")/file.d" ]; then
        cp -r "$(dirname "$file_so")/file.d" "$1/"
    fi
}

# A molt device in DIR: DIR/molt.yaml, data dir DIR/data (device type dev-a), the file module
# alone in DIR/native (bench_copy_file_module), no exec modules. The data dir is kept if it
# exists (a registry cache, as on a device between updates).
bench_molt_device() {  # DIR
    mkdir -p "$1/data" "$1/native" "$1/none"
    bench_copy_file_module "$1/native"
    printf 'device_type=dev-a\n' >"$1/data/device_type"
    cat >"$1/molt.yaml" <<YAML
data_dir: $1/data
device_type_file: $1/data/device_type
module_dirs:
  - $1/none
native_module_dir: $1/native
YAML
}

# The small update's artifact (bench/small_update.sh, bench/small_ab.sh): sets payload (1 KiB of
# random bytes, kept between runs) and art, a single-file artifact (mender-artifact's layout,
# gzip, device type dev-a) installing it as TARGET/opt/app/app.conf. Needs molt_artifact.
bench_small_artifact() {  # TARGET
    payload="$out/small-1k.bin"
    [ -f "$payload" ] || head -c 1024 /dev/urandom >"$payload"
    art="$out/small-1k.mender"
    if [ ! -f "$art" ] || [ "$art" -ot "$top/bench/lib.sh" ] || [ "$art" -ot "$payload" ]; then
        mkdir -p "$out/small-src"
        printf '%s/opt/app\n' "$1" >"$out/small-src/dest_dir"
        printf 'app.conf\n' >"$out/small-src/filename"
        printf '0644\n' >"$out/small-src/permissions"
        cp "$payload" "$out/small-src/app.conf"
        (cd "$out/small-src" && "$molt_artifact" write module-image -T single-file -n small-1 \
            -t dev-a --compression gzip -o "$art" -f dest_dir -f filename -f permissions \
            -f app.conf >/dev/null)
        rm -rf "$out/small-src"
    fi
}
