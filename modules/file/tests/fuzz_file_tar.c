/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target for the file module's checked tar extraction (fm_extract_tar): any input, read as
 * a payload tar from the fake host, is extracted into a fresh folder next to a sentinel file.
 * Whatever the input, nothing may appear or change outside that folder, and an accepted tree
 * has no symlink resolving outside it. A violation aborts. Runs over the corpus
 * modules/file/tests/corpus/tar/ as an ordinary test (tests/fuzz/corpus_driver.c), and under
 * libFuzzer when MOLT_FUZZ is on. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "../file_tar.h"
#include "fake_host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[PATH_MAX], tree[PATH_MAX + 8], sentinel[PATH_MAX + 16];

static void remove_scratch(void)
{
    fm_rm_rf(scratch, NULL);
}

static void setup_once(void)
{
    char tmpl[] = "/tmp/molt-file-fuzz.XXXXXX";
    if (!mkdtemp(tmpl) || !realpath(tmpl, scratch))
        abort();
    snprintf(tree, sizeof tree, "%s/tree", scratch);
    snprintf(sentinel, sizeof sentinel, "%s/sentinel", scratch);
    FILE *f = fopen(sentinel, "w");
    if (!f || fputs("sentinel\n", f) < 0 || fclose(f) != 0)
        abort();
    atexit(remove_scratch);
}

/* Every symlink below tree resolves (where it resolves) inside it. */
static int link_inside(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag != FTW_SL)
        return 0;
    char *rp = realpath(path, NULL);
    size_t n = strlen(tree);
    int ok = !rp || (strncmp(rp, tree, n) == 0 && (rp[n] == '\0' || rp[n] == '/'));
    free(rp);
    return ok ? 0 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup_once();
        ready = 1;
    }
    fm m = {.h = &fake_host};
    fm_rm_rf(tree, NULL);
    if (mkdir(tree, 0755) != 0)
        abort();
    fake_payload(data, size, 0);
    int status = 0;
    struct archive *a = fm_archive_from_payload(&m, &status);
    int r = -1;   /* an input that does not even open as an archive is refused */
    if (a) {
        FILE *fix = tmpfile();
        if (!fix)
            abort();
        r = fm_extract_tar(&m, a, tree, 1 << 20, fileno(fix), NULL);
        archive_read_free(a);
        if (r == 0 && status == 0)
            r = fm_apply_fixups(fileno(fix), tree, NULL);
        fclose(fix);
    }
    if (r == 0 && nftw(tree, link_inside, 16, FTW_PHYS) != 0)
        abort();   /* accepted a tree with a symlink leaving it */
    /* Outside the tree: only the sentinel, unchanged, with one link. */
    DIR *d = opendir(scratch);
    struct dirent *de;
    if (!d)
        abort();
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            strcmp(de->d_name, "tree") != 0 && strcmp(de->d_name, "sentinel") != 0)
            abort();   /* something was written next to the tree */
    closedir(d);
    struct stat st;
    char buf[32] = {0};
    FILE *f = fopen(sentinel, "r");
    if (!f || stat(sentinel, &st) != 0 || st.st_nlink != 1 || !S_ISREG(st.st_mode) ||
        fread(buf, 1, sizeof buf - 1, f) != 9 || strcmp(buf, "sentinel\n") != 0)
        abort();   /* the file outside was changed or linked into the tree */
    fclose(f);
    fm_rm_rf(tree, NULL);
    return 0;
}
