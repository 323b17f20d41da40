/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the artifact writer (core/artifact/writer.c, sign.c, tar_write.c): what it
 * writes is compared with what Debian's mender-artifact 3.9 writes for the same input, checked
 * by `mender-artifact validate/read`, tar, gzip/xz/zstd and openssl, and read back by molt's
 * own streaming reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "artifact/reader.h"
#include "artifact/tar_write.h"
#include "artifact/writer.h"
#include "util/encoding.h"
#include "util/fs.h"

static char dir[64];

/* Run a bash command in dir (output appended to dir/log); returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    FILE *p = popen("bash", "w");
    if (!p)
        return -1;
    fprintf(p, "cd '%s' && (", dir);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p, fmt, ap);
    va_end(ap);
    fprintf(p, "\n) >>log 2>&1\n");
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* dir/name in a static ring of buffers: valid for the next 31 calls */
static const char *P(const char *name)
{
    static char bufs[32][512];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static char *slurp(const char *name, size_t *ret_len)
{
    char *data = NULL;
    size_t len = 0;
    molt_err err = {0};
    if (molt_read_file(P(name), 64 << 20, &data, &len, &err) < 0)
        fail_msg("cannot read %s: %s", name, err.msg);
    if (ret_len)
        *ret_len = len;
    return data;
}

static void assert_same_file(const char *a, const char *b)
{
    if (sh("cmp '%s' '%s'", a, b) != 0) {
        char *x = slurp(a, NULL), *y = slurp(b, NULL);
        fail_msg("%s and %s differ:\n%s\n%s", a, b, x, y);
    }
}

/* The inputs (fx_cached: made once per build of this program). */
static void build_inputs(const char *where)
{
    (void)where;
    /* the inputs of docs/reference §1.9, with fixed mtimes so both tools store the same */
    if (sh("head -c 100000 /dev/urandom > payload.bin && echo hello > file2.txt && "
           "printf '%%s' '{\"key1\":\"val1\",\"n\":5,\"lst\":[\"a\",\"b\"],\"f\":0.1,"
           "\"big\":1e30,\"html\":\"<&>\",\"neg\":-2.5e-7}' > meta.json && "
           "printf '#!/bin/sh\\nexit 0\\n' > ArtifactInstall_Enter_00 && "
           "head -c 70000 /dev/urandom > rootfs.ext4 && "
           "touch -d @1700000000 payload.bin file2.txt ArtifactInstall_Enter_00 rootfs.ext4 && "
           "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa8.key && "
           "openssl rsa -in rsa8.key -traditional -out rsa.key && "
           "openssl pkey -in rsa.key -pubout -out rsa.pub && "
           "openssl ecparam -name prime256v1 -genkey -noout -out ec.key && "
           "openssl ec -in ec.key -pubout -out ec.pub && "
           "openssl ecparam -name prime256v1 -genkey -noout -out ec2.key && "
           "openssl ec -in ec2.key -pubout -out ec2.pub") != 0)
        fail_msg("making the inputs failed: see %s/log", dir);
}

static int setup(void **state)
{
    (void)state;
    fx_scratch(dir, sizeof dir, "writer-test");
    fx_cached("test_artifact_writer", dir, build_inputs);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fx_scratch_remove(dir);
    return 0;
}

/* The spec of docs/reference §1.9's module-image, as molt-artifact builds it. */
typedef struct module_fixture {
    char paths[3][512];
    const char *files[2], *scripts[1], *devices[2], *dep_names[1], *dep_groups[1];
    json_t *provides, *depends, *clears, *meta;
    molt_artifact_spec spec;
} module_fixture;

static void module_fixture_init(module_fixture *f, molt_compression c, const char *key)
{
    memset(f, 0, sizeof *f);
    snprintf(f->paths[0], sizeof f->paths[0], "%s", P("payload.bin"));
    snprintf(f->paths[1], sizeof f->paths[1], "%s", P("file2.txt"));
    snprintf(f->paths[2], sizeof f->paths[2], "%s", P("ArtifactInstall_Enter_00"));
    f->files[0] = f->paths[0];
    f->files[1] = f->paths[1];
    f->scripts[0] = f->paths[2];
    f->devices[0] = "dev-a";
    f->devices[1] = "dev-b";
    f->dep_names[0] = "art-0";
    f->dep_groups[0] = "grp0";
    f->provides = json_pack("{s:s, s:s}", "rootfs-image.myapp.version", "1.0", "custom.key",
                            "cval");
    f->depends = json_pack("{s:s}", "dep.key", "dval");
    f->clears = json_pack("[s, s]", "foo.*", "rootfs-image.myapp.*");
    char *meta_text = slurp("meta.json", NULL);
    f->meta = json_loads(meta_text, JSON_DECODE_INT_AS_REAL, NULL);
    free(meta_text);
    assert_non_null(f->meta);
    molt_artifact_spec s = {
        .payload_type = "my-type", .name = "art-1", .group = "grp1",
        .device_types = f->devices, .n_device_types = 2,
        .depends_names = f->dep_names, .n_depends_names = 1,
        .depends_groups = f->dep_groups, .n_depends_groups = 1,
        .provides = f->provides, .depends = f->depends, .clears = f->clears, .meta_data = f->meta,
        .files = f->files, .n_files = 2, .scripts = f->scripts, .n_scripts = 1,
        .compression = c, .signing_key = key,
    };
    f->spec = s;
}

static void module_fixture_free(module_fixture *f)
{
    json_decref(f->provides);
    json_decref(f->depends);
    json_decref(f->clears);
    json_decref(f->meta);
}

static const char mender_module_args[] =
    "-T my-type -n art-1 -t dev-a -t dev-b -f payload.bin -f file2.txt "
    "--software-name myapp --software-version 1.0 -s ArtifactInstall_Enter_00 -m meta.json "
    "-N art-0 -g grp1 -G grp0 -p custom.key:cval -d dep.key:dval --clears-provides 'foo.*'";

/* Unpack an artifact and its header tar into folder out (header.tar* decompressed by tar). */
static void unpack(const char *artifact, const char *out)
{
    assert_int_equal(sh("rm -rf %s && mkdir -p %s/h && tar -xf %s -C %s && "
                        "tar -xf %s/header.tar* -C %s/h", out, out, artifact, out, out, out), 0);
}

static void write_ok(const molt_artifact_spec *spec, const char *out)
{
    molt_err err = {0};
    int r = molt_artifact_write(spec, P(out), &err);
    if (r != 0)
        fail_msg("molt_artifact_write %s: %d %s", out, r, err.msg);
}

/* Same members in the same order, same header JSON and meta-data bytes, same manifest lines
 * for the payload and version, as mender-artifact writes for the same input. */
static void test_module_image_matches_mender_artifact(void **state)
{
    (void)state;
    module_fixture f;
    module_fixture_init(&f, MOLT_COMPRESSION_GZIP, NULL);
    write_ok(&f.spec, "molt.mender");
    module_fixture_free(&f);
    assert_int_equal(sh("mender-artifact write module-image %s -o mender.mender",
                        mender_module_args), 0);
    assert_int_equal(sh("tar -tvf molt.mender | awk '{print $1, $2, $6}' > molt.list && "
                        "tar -tvf mender.mender | awk '{print $1, $2, $6}' > mender.list"), 0);
    assert_same_file("molt.list", "mender.list");
    unpack(P("molt.mender"), "m");
    unpack(P("mender.mender"), "g");
    assert_int_equal(sh("tar -tvf m/header.tar.gz > m.hlist && tar -tvf g/header.tar.gz > "
                        "g.hlist"), 0);
    assert_same_file("m.hlist", "g.hlist"); /* names, modes, owners, sizes, mtimes */
    /* uncompressed, both inner tars are byte for byte what mender-artifact writes */
    assert_int_equal(sh("zcat m/header.tar.gz | cmp - <(zcat g/header.tar.gz) && "
                        "zcat m/data/0000.tar.gz | cmp - <(zcat g/data/0000.tar.gz)"), 0);
    assert_int_equal(sh("tar -tvf m/data/0000.tar.gz | awk '{print $1, $3, $6}' > m.dlist && "
                        "tar -tvf g/data/0000.tar.gz | awk '{print $1, $3, $6}' > g.dlist"), 0);
    assert_same_file("m.dlist", "g.dlist");
    assert_same_file("m/version", "g/version");
    assert_same_file("m/h/header-info", "g/h/header-info");
    assert_same_file("m/h/headers/0000/type-info", "g/h/headers/0000/type-info");
    assert_same_file("m/h/headers/0000/meta-data", "g/h/headers/0000/meta-data");
    assert_same_file("m/h/scripts/ArtifactInstall_Enter_00", "g/h/scripts/ArtifactInstall_Enter_00");
    assert_int_equal(sh("grep -v header.tar m/manifest > m.man && grep -v header.tar g/manifest > "
                        "g.man"), 0);
    assert_same_file("m.man", "g.man");
    /* the manifest's header line is the sha256 of the member as stored */
    assert_int_equal(sh("cd m && sha256sum --strict --quiet -c manifest --ignore-missing && "
                        "grep -c . manifest | grep -qx 4"), 0);
    /* and mender-artifact itself accepts it */
    assert_int_equal(sh("mender-artifact validate molt.mender"), 0);
    assert_int_equal(sh("mender-artifact read molt.mender > m.read && mender-artifact read "
                        "mender.mender > g.read && diff <(grep -v -i 'modified' m.read) "
                        "<(grep -v -i modified g.read)"), 0);
}

/* Outer layout byte rules: 512-byte blocks, metadata like mender-artifact, ends with two zero
 * blocks and nothing after them. */
static void test_outer_tar_layout(void **state)
{
    (void)state;
    module_fixture f;
    module_fixture_init(&f, MOLT_COMPRESSION_NONE, NULL);
    write_ok(&f.spec, "none.mender");
    module_fixture_free(&f);
    size_t len;
    unsigned char *a = (unsigned char *)slurp("none.mender", &len);
    assert_int_equal(len % 512, 0);
    static const unsigned char zero[1024];
    assert_memory_equal(a + len - 1024, zero, 1024);
    /* first member "version", 31 bytes, mode 0600, uid 0, mtime 0, empty owner names */
    molt_tar_header h;
    assert_int_equal(molt_tar_header_parse(a, &h, NULL), 1);
    assert_string_equal(h.name, "version");
    assert_int_equal(h.size, 31);
    assert_memory_equal(a + 100, "0000600", 8);
    assert_memory_equal(a + 136, "00000000000", 12);
    assert_int_equal(a[265], 0);
    assert_memory_equal(a + 512, "{\"format\":\"mender\",\"version\":3}", 31);
    /* walk every member: checksums good, data member's patched size right up to the end */
    size_t off = 0;
    const char *want[] = {"version", "manifest", "header.tar", "data/0000.tar"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(molt_tar_header_parse(a + off, &h, NULL), 1);
        assert_string_equal(h.name, want[i]);
        if (i >= 2)
            assert_memory_equal(a + off + 265, "root", 5);
        off += 512 + molt_tar_padded(h.size);
    }
    assert_int_equal(off + 1024, len);
    free(a);
    assert_int_equal(sh("mender-artifact validate none.mender"), 0);
}

/* Each compression: the right suffix and magic, the inner tars intact, mender-artifact 3.9
 * validates none/gzip/xz (it predates zstd, so zstd -t and tar check that one). */
static void test_compressions(void **state)
{
    (void)state;
    struct {
        molt_compression c;
        const char *suffix, *magic_cmd;
    } cases[] = {
        {MOLT_COMPRESSION_NONE, "", "true"},
        {MOLT_COMPRESSION_GZIP, ".gz", "gzip -t c/header.tar.gz c/data/0000.tar.gz"},
        {MOLT_COMPRESSION_XZ, ".xz", "xz -t c/header.tar.xz c/data/0000.tar.xz"},
        {MOLT_COMPRESSION_ZSTD, ".zst", "zstd -q -t c/header.tar.zst c/data/0000.tar.zst"},
    };
    for (size_t i = 0; i < 4; i++) {
        module_fixture f;
        module_fixture_init(&f, cases[i].c, NULL);
        write_ok(&f.spec, "c.mender");
        module_fixture_free(&f);
        assert_int_equal(sh("rm -rf c && mkdir c && tar -xf c.mender -C c"), 0);
        assert_int_equal(sh("test \"$(tar -tf c.mender | tr '\\n' ' ')\" = "
                            "'version manifest header.tar%s data/0000.tar%s '",
                            cases[i].suffix, cases[i].suffix), 0);
        assert_int_equal(sh("%s", cases[i].magic_cmd), 0);
        /* payload files come back identical from the data tar */
        assert_int_equal(sh("mkdir c/d && tar -xf c/data/0000.tar%s -C c/d && "
                            "cmp c/d/payload.bin payload.bin && cmp c/d/file2.txt file2.txt && "
                            "test \"$(tar -tf c/data/0000.tar%s | tr '\\n' ' ')\" = "
                            "'payload.bin file2.txt '", cases[i].suffix, cases[i].suffix), 0);
        if (cases[i].c != MOLT_COMPRESSION_ZSTD)
            assert_int_equal(sh("mender-artifact validate c.mender"), 0);
    }
}

/* Signed with RSA and ECDSA: mender-artifact validates with the public key, and refuses the
 * wrong key; the ECDSA signature is raw r||s (64 bytes). */
static void test_signed(void **state)
{
    (void)state;
    const char *keys[] = {"rsa.key", "rsa8.key", "ec.key"};
    const char *pubs[] = {"rsa.pub", "rsa.pub", "ec.pub"};
    for (size_t i = 0; i < 3; i++) {
        module_fixture f;
        module_fixture_init(&f, MOLT_COMPRESSION_GZIP, P(keys[i]));
        write_ok(&f.spec, "s.mender");
        module_fixture_free(&f);
        assert_int_equal(sh("test \"$(tar -tf s.mender | tr '\\n' ' ')\" = "
                            "'version manifest manifest.sig header.tar.gz data/0000.tar.gz '"),
                         0);
        assert_int_equal(sh("mender-artifact validate -k %s s.mender", pubs[i]), 0);
        assert_int_not_equal(sh("mender-artifact validate -k %s s.mender",
                                i == 2 ? "ec2.pub" : "ec.pub"), 0);
    }
    assert_int_equal(sh("test \"$(tar -xOf s.mender manifest.sig | base64 -d | wc -c)\" = 64"), 0);
}

/* sign: manifest.sig added after manifest (or replaced), every other member byte-identical;
 * mender-artifact validates the result. */
static void test_sign_copies_members(void **state)
{
    (void)state;
    molt_err err = {0};
    assert_int_equal(sh("mender-artifact write module-image %s -o plain.mender",
                        mender_module_args), 0);
    assert_int_equal(molt_artifact_sign(P("plain.mender"), P("signed.mender"), P("ec.key"), &err),
                     0);
    assert_int_equal(sh("mender-artifact validate -k ec.pub signed.mender"), 0);
    assert_int_equal(sh("test \"$(tar -tf signed.mender | tr '\\n' ' ')\" = "
                        "'version manifest manifest.sig header.tar.gz data/0000.tar.gz '"), 0);
    /* signed = plain with exactly the manifest.sig member (header + one block) inserted */
    assert_int_equal(sh("head -c 2048 plain.mender | cmp - <(head -c 2048 signed.mender) && "
                        "tail -c +2049 plain.mender | cmp - <(tail -c +3073 signed.mender)"), 0);
    /* re-sign in place with RSA: the ECDSA signature is replaced */
    assert_int_equal(sh("cp signed.mender resigned.mender"), 0);
    assert_int_equal(molt_artifact_sign(P("resigned.mender"), P("resigned.mender"), P("rsa.key"),
                                        &err), 0);
    assert_int_equal(sh("mender-artifact validate -k rsa.pub resigned.mender"), 0);
    assert_int_not_equal(sh("mender-artifact validate -k ec.pub resigned.mender"), 0);
    assert_int_equal(sh("test \"$(tar -tf resigned.mender | grep -c manifest.sig)\" = 1 && "
                        "tar -xOf resigned.mender header.tar.gz | cmp - <(tar -xOf plain.mender "
                        "header.tar.gz) && tar -xOf resigned.mender data/0000.tar.gz | "
                        "cmp - <(tar -xOf plain.mender data/0000.tar.gz)"), 0);
    /* what mender-artifact signed, re-signed by molt, still validates */
    assert_int_equal(sh("cp plain.mender ms.mender && mender-artifact sign -k rsa.key ms.mender"),
                     0);
    assert_int_equal(molt_artifact_sign(P("ms.mender"), P("ms2.mender"), P("ec.key"), &err), 0);
    assert_int_equal(sh("mender-artifact validate -k ec.pub ms2.mender"), 0);
    /* members with pax extended headers (GNU tar --format=pax): copied with their headers; an
     * old manifest.sig is dropped with its own */
    assert_int_equal(sh("rm -rf px && mkdir px && tar -xf ms.mender -C px && (cd px && "
                        "tar --format=pax -cf ../pax.mender version manifest manifest.sig "
                        "header.tar.gz data/0000.tar.gz) && "
                        "test \"$(grep -ac PaxHeaders pax.mender)\" -ge 5"), 0);
    assert_int_equal(molt_artifact_sign(P("pax.mender"), P("pax2.mender"), P("ec.key"), &err), 0);
    assert_int_equal(sh("mender-artifact validate -k ec.pub pax2.mender && "
                        "test \"$(tar -tf pax2.mender | tr '\\n' ' ')\" = "
                        "'version manifest manifest.sig header.tar.gz data/0000.tar.gz ' && "
                        "test \"$(tar -xOf pax2.mender manifest.sig | base64 -d | wc -c)\" = 64"),
                     0);
    /* not an artifact */
    assert_int_equal(molt_artifact_sign(P("payload.bin"), P("x.mender"), P("ec.key"), &err),
                     MOLT_EFORMAT);
    assert_int_equal(molt_artifact_sign(P("missing.mender"), P("x.mender"), P("ec.key"), &err),
                     MOLT_ENOTFOUND);
    /* a truncated artifact */
    assert_int_equal(sh("head -c 3000 plain.mender > trunc.mender"), 0);
    assert_int_equal(molt_artifact_sign(P("trunc.mender"), P("x.mender"), P("ec.key"), &err),
                     MOLT_EFORMAT);
    assert_false(molt_path_exists(P("x.mender")));
}

static void test_bootstrap_and_rootfs(void **state)
{
    (void)state;
    const char *devices[] = {"qemu"};
    json_t *provides = json_pack("{s:s}", "rootfs-image.version", "boot-1");
    molt_artifact_spec boot = {.name = "boot-1", .device_types = devices, .n_device_types = 1,
                               .provides = provides, .compression = MOLT_COMPRESSION_GZIP};
    write_ok(&boot, "boot.mender");
    json_decref(provides);
    assert_int_equal(sh("mender-artifact write bootstrap-artifact -n boot-1 -t qemu "
                        "-p rootfs-image.version:boot-1 -o gboot.mender"), 0);
    unpack(P("boot.mender"), "b");
    unpack(P("gboot.mender"), "gb");
    /* the uncompressed header tar is byte-identical to mender-artifact's */
    assert_int_equal(sh("zcat b/header.tar.gz | cmp - <(zcat gb/header.tar.gz)"), 0);
    assert_int_equal(sh("grep -v header.tar b/manifest | cmp - <(grep -v header.tar "
                        "gb/manifest)"), 0);
    assert_same_file("b/h/header-info", "gb/h/header-info");
    assert_same_file("b/h/headers/0000/type-info", "gb/h/headers/0000/type-info");
    assert_int_equal(sh("test \"$(tar -tf b/header.tar.gz | tr '\\n' ' ')\" = "
                        "'header-info headers/0000/type-info '"), 0);
    /* the data tar is an empty tar: 1024 zero bytes */
    assert_int_equal(sh("zcat b/data/0000.tar.gz | cmp - <(head -c 1024 /dev/zero)"), 0);
    assert_int_equal(sh("mender-artifact validate boot.mender"), 0);

    const char *image[] = {P("rootfs.ext4")};
    unsigned char sha[32];
    char hex[65];
    molt_err err = {0};
    assert_int_equal(molt_artifact_file_sha256(image[0], sha, &err), 0);
    molt_hex_encode(sha, 32, hex);
    provides = json_pack("{s:s, s:s}", "rootfs-image.version", "rel-1", "rootfs-image.checksum",
                         hex);
    json_t *clears = json_pack("[s,s,s]", "artifact_group", "rootfs_image_checksum",
                               "rootfs-image.*");
    molt_artifact_spec rootfs = {.payload_type = "rootfs-image", .name = "rel-1",
                                 .device_types = devices, .n_device_types = 1,
                                 .provides = provides, .clears = clears, .empty_meta_data = true,
                                 .files = image, .n_files = 1,
                                 .compression = MOLT_COMPRESSION_NONE};
    write_ok(&rootfs, "rootfs.mender");
    json_decref(provides);
    json_decref(clears);
    assert_int_equal(sh("mender-artifact write rootfs-image -f rootfs.ext4 -n rel-1 -t qemu "
                        "--compression none -o grootfs.mender"), 0);
    unpack(P("rootfs.mender"), "r");
    unpack(P("grootfs.mender"), "gr");
    assert_same_file("r/h/header-info", "gr/h/header-info");
    /* mender-artifact 3.9 writes "type":"", >= 4.4 writes "rootfs-image" like molt */
    assert_int_equal(sh("sed 's/\"type\":\"\"/\"type\":\"rootfs-image\"/' "
                        "gr/h/headers/0000/type-info | cmp - r/h/headers/0000/type-info"), 0);
    assert_int_equal(sh("test -f r/h/headers/0000/meta-data && "
                        "! test -s r/h/headers/0000/meta-data"), 0);
    assert_same_file("r/version", "gr/version");
    assert_int_equal(sh("grep data/ r/manifest | cmp - <(grep data/ gr/manifest)"), 0);
    assert_int_equal(sh("mender-artifact validate rootfs.mender"), 0);
}

/* No file is left behind when writing fails. */
static void assert_no_temp_files(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-"))
            fail_msg("temporary file %s left behind", e->d_name);
    closedir(d);
}

static void expect_refused(const molt_artifact_spec *s, int code, const char *in_msg)
{
    molt_err err = {0};
    int r = molt_artifact_write(s, P("bad.mender"), &err);
    if (r != code || (in_msg && !strstr(err.msg, in_msg)))
        fail_msg("expected %d mentioning \"%s\", got %d: %s", code, in_msg ? in_msg : "", r,
                 err.msg);
}

static void test_refusals(void **state)
{
    (void)state;
    module_fixture f;
    module_fixture_init(&f, MOLT_COMPRESSION_GZIP, NULL);
    const char *bad_files[] = {P("payload.bin"), P("sub/payload.bin")};
    assert_int_equal(sh("mkdir -p sub && cp payload.bin sub/ && cp file2.txt 'sub/a b' && "
                        "cp ArtifactInstall_Enter_00 Download_Enter_00"), 0);

    molt_artifact_spec s = f.spec;
    s.files = bad_files; /* same base name twice */
    expect_refused(&s, MOLT_EINVAL, "same name");

    const char *space[] = {P("sub/a b")};
    s.files = space;
    s.n_files = 1;
    expect_refused(&s, MOLT_EINVAL, "a b");

    const char *missing[] = {P("no-such-file")};
    s.files = missing;
    expect_refused(&s, MOLT_ENOTFOUND, NULL);

    s = f.spec;
    const char *script[] = {P("Download_Enter_00")};
    s.scripts = script;
    expect_refused(&s, MOLT_EINVAL, "Download_Enter_00");

    s = f.spec;
    s.n_device_types = 0;
    expect_refused(&s, MOLT_EINVAL, NULL);

    s = f.spec;
    s.name = "";
    expect_refused(&s, MOLT_EINVAL, NULL);

    s = f.spec;
    s.payload_type = NULL; /* bootstrap with files */
    expect_refused(&s, MOLT_EINVAL, NULL);

    s = f.spec;
    json_t *bad_provides = json_pack("{s:i}", "k", 1);
    s.provides = bad_provides;
    expect_refused(&s, MOLT_EINVAL, NULL);
    json_decref(bad_provides);

    s = f.spec;
    s.signing_key = P("no-such.key");
    expect_refused(&s, MOLT_ENOTFOUND, NULL);

    molt_err err = {0};
    s = f.spec;
    assert_int_equal(molt_artifact_write(&s, P("no-such-dir/x.mender"), &err), MOLT_ENOTFOUND);

    assert_false(molt_path_exists(P("bad.mender")));
    assert_no_temp_files();
    module_fixture_free(&f);
}

/* Sizes from 8 GiB on use the base-256 form; the header parser reads back both forms. */
static void test_tar_header_sizes(void **state)
{
    (void)state;
    unsigned char block[512];
    molt_tar_meta meta = {.mode = 0600};
    molt_tar_header h;
    uint64_t sizes[] = {0, 1, 511, 512, 077777777777ull, 1ull << 33, 5ull << 40};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        assert_int_equal(molt_tar_header_fill(block, "data/0000.tar.gz", 0, &meta, NULL), 0);
        molt_tar_header_set_size(block, sizes[i]);
        assert_int_equal(molt_tar_header_parse(block, &h, NULL), 1);
        assert_true(h.size == sizes[i]);
        assert_string_equal(h.name, "data/0000.tar.gz");
    }
    assert_int_equal(block[124], 0x80);
    block[0] ^= 1;
    assert_int_equal(molt_tar_header_parse(block, &h, NULL), MOLT_EFORMAT);
    char longname[120];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(molt_tar_header_fill(block, longname, 0, &meta, NULL), MOLT_EINVAL);
}

#ifndef NO_READER
/* Read back with molt's own streaming reader: every field and file as written. */
static void test_round_trip_through_reader(void **state)
{
    (void)state;
    module_fixture f;
    module_fixture_init(&f, MOLT_COMPRESSION_XZ, P("ec.key"));
    write_ok(&f.spec, "rt.mender");
    module_fixture_free(&f);
    molt_err err = {0};
    molt_source *src = NULL;
    molt_artifact_reader *rd = NULL;
    assert_int_equal(molt_source_file_new(&src, P("rt.mender"), &err), 0);
    const char *keys[] = {P("ec2.pub"), P("ec.pub")};
    molt_artifact_opts opts = {.verify_keys = keys, .n_verify_keys = 2};
    int r = molt_artifact_reader_open(&rd, src, &opts, &err);
    if (r != 0)
        fail_msg("reader_open: %s", err.msg);
    const molt_artifact_info *info = molt_artifact_reader_info(rd);
    assert_string_equal(info->name, "art-1");
    assert_string_equal(info->group, "grp1");
    assert_string_equal(info->payload_type, "my-type");
    assert_int_equal(info->compression, MOLT_COMPRESSION_XZ);
    assert_true(info->is_signed);
    assert_true(info->signature_verified);
    assert_int_equal(json_array_size(info->depends_device_types), 2);
    assert_string_equal(json_string_value(json_object_get(info->type_provides, "custom.key")),
                        "cval");
    assert_string_equal(json_string_value(json_object_get(info->type_depends, "dep.key")),
                        "dval");
    assert_int_equal(json_array_size(info->clears), 2);
    assert_int_equal(info->n_scripts, 1);
    assert_string_equal(info->scripts[0].name, "ArtifactInstall_Enter_00");
    assert_string_equal(json_string_value(json_object_get(info->meta_data, "html")), "<&>");
    const char *want[] = {"payload.bin", "file2.txt"};
    for (int i = 0; i < 2; i++) {
        const char *name;
        int64_t size;
        assert_int_equal(molt_artifact_reader_next(rd, &name, &size, &err), 1);
        assert_string_equal(name, want[i]);
        size_t len;
        char *expect = slurp(want[i], &len);
        assert_int_equal(size, (int64_t)len);
        char *got = malloc(len + 1);
        size_t at = 0;
        ssize_t n;
        while ((n = molt_artifact_reader_read(rd, got + at, len + 1 - at, &err)) > 0)
            at += (size_t)n;
        assert_int_equal(n, 0);
        assert_int_equal(at, len);
        assert_memory_equal(got, expect, len);
        free(got);
        free(expect);
    }
    const char *name;
    int64_t size;
    assert_int_equal(molt_artifact_reader_next(rd, &name, &size, &err), 0);
    molt_artifact_reader_free(rd);
    molt_source_free(src);
}

#endif

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tar_header_sizes),
        cmocka_unit_test(test_module_image_matches_mender_artifact),
        cmocka_unit_test(test_outer_tar_layout),
        cmocka_unit_test(test_compressions),
        cmocka_unit_test(test_signed),
        cmocka_unit_test(test_sign_copies_members),
        cmocka_unit_test(test_bootstrap_and_rootfs),
        cmocka_unit_test(test_refusals),
#ifndef NO_READER
        cmocka_unit_test(test_round_trip_through_reader),
#endif
    };
    return fx_run_group_tests(argc, argv, tests, setup, teardown);
}
