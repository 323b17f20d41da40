/* SPDX-License-Identifier: Apache-2.0 */
/* Internal interface between the parts of the file module (file_module.c: the states;
 * file_paths.c: destinations, allowed roots, sibling names, removal; file_fixups.c: a tree's
 * deferred owners and modes; file_tar_load.c: loading the tar support; file_tree.c, built as
 * file-tar.so: tar payloads, file_tar.h). */
#ifndef MOLT_FILE_MODULE_H
#define MOLT_FILE_MODULE_H

#include <molt/sdk.h>

#include <stdint.h>
#include <sys/types.h>

/* The module's state for one molt process (host table, allowed roots, test knobs). */
typedef struct fm {
    const struct molt_host_api *h;
    char **roots;           /* allowed roots, resolved (realpath) */
    size_t n_roots;
    int64_t kill_bytes;     /* test knob MOLT_FILE_TEST_KILL=bytes=N (0 = off) */
    const char *kill_at;    /* test knob MOLT_FILE_TEST_KILL=at=POINT (NULL = off) */
    int64_t bytes;          /* payload bytes consumed in this call */
    int no_exchange;        /* test knob MOLT_FILE_TEST_NO_EXCHANGE=1: act as if the file system
                               lacked renameat2(RENAME_EXCHANGE) and O_TMPFILE */
    int tmpfile;            /* stage a file unnamed (O_TMPFILE), then link it (init) */
    unsigned int umask;     /* molt's umask (init) */
    int dep;                /* the host keeps deployment values (ABI 1.2 dep_*): the commit mark
                               is one (init) */
    int keeps;              /* and this state from Download to ArtifactInstall (keeps_state): a
                               single file is staged unnamed and linked in ArtifactInstall */
    int staged_fd;          /* that unnamed staged file, from Download to ArtifactInstall; -1 */
} fm;

/* Test-only: die of SIGKILL (a power cut) when MOLT_FILE_TEST_KILL=at=<point> names point. */
void fm_kill_point(const fm *m, const char *point);
/* Test-only: count n payload bytes; die of SIGKILL once MOLT_FILE_TEST_KILL=bytes=N is reached. */
void fm_count_bytes(fm *m, int64_t n);

/* Load the allowed roots: config_get("allowed_roots") (`modules: file: allowed_roots:` in
 * molt.yaml, a list or one ':'-separated string) when set, else the environment variable
 * MOLT_FILE_ALLOWED_ROOTS (':'-separated); absolute folders. 0 or MOLT_EINVAL (none set, or none
 * exists), with a message in err. */
int fm_load_roots(fm *m, struct molt_sdk_error *err);

/* Normalize the absolute destination raw ("." and empty components dropped, ".." refused),
 * create its missing parent folders (0755), and check that the parent resolves (realpath) inside
 * an allowed root. *ret (malloc'd) is realpath(parent) + "/" + last component: strictly below a
 * root; *ret_made (malloc'd) the topmost folder it created, or NULL. MOLT_EINVAL with a message
 * naming raw otherwise. */
int fm_resolve_dest(fm *m, const char *raw, char **ret, char **ret_made,
                    struct molt_sdk_error *err);

/* Remove the empty folders from the parent of dest up to made (the folders a deployment
 * created); stops at the first one that is not empty. */
void fm_unmake_dirs(const char *dest, const char *made);

/* "<dir of dest>/.<base of dest>.molt-<tag>" (malloc'd, NULL when out of memory): the staged
 * content (tag "new"), the backup ("old") and what is being deleted ("trash"). */
char *fm_sibling(const char *dest, const char *tag);

/* The parent folder of an absolute path (malloc'd). */
char *fm_dirname(const char *path);

/* Remove path and everything below it (not following symlinks; *at() calls, any depth); a
 * missing path is 0: libmolt-sdk's molt_sdk_rm_rf, under a short name. */
#define fm_rm_rf molt_sdk_rm_rf

/* Bytes available to us on the file system holding path (statvfs f_bavail * f_frsize). */
int fm_free_bytes(const char *path, uint64_t *ret, struct molt_sdk_error *err);

/* Check that need bytes fit on the file system of dir; MOLT_ESPACE with the numbers otherwise. */
int fm_check_space(const char *dir, uint64_t need, const char *what, struct molt_sdk_error *err);

/* The deepest entry of a tree, in folders below its top (the path length is bounded too: every
 * entry's path, the destination's included, is shorter than PATH_MAX). */
#define FM_TREE_DEPTH_MAX 256

/* Append one deferred owner and mode (for the entry rel of a tree, "" for its top folder) to
 * fix_fd; a later record for the same entry wins. */
int fm_fixup_add(int fix_fd, const char *rel, int64_t uid, int64_t gid, mode_t mode,
                 struct molt_sdk_error *err);

/* Apply the owners and modes that fm_extract_tar recorded in fix_fd to the tree root, relative
 * to a descriptor of root (*at() calls, never following a symlink), then sync. Call it only once
 * the payload verified (the host's read returned 0). */
int fm_apply_fixups(int fix_fd, const char *root, struct molt_sdk_error *err);

/* The tar support: file_tree.c and libarchive are a shared object of their own,
 * FM_TAR_DIR/FM_TAR_SO in the folder of file.so, so that loading file.so maps neither libarchive
 * nor the libraries it needs (libacl, liblz4, libbz2) for an update without a tree. It is not a
 * module: the registry takes only the *.so files of native_module_dir itself, not of a folder
 * below it. file.so loads it on the first tree of a process (fm_tar_load) and never unloads it.
 * Both come from one build: FM_TAR_VERSION and the sizes of the table and of struct fm must
 * match, or the tar support is refused. */
#define FM_TAR_DIR "file.d"
#define FM_TAR_SO "file-tar.so"
#define FM_TAR_ENTRY "molt_file_tar_entry"
#define FM_TAR_VERSION 1

typedef struct fm_tar {
    uint32_t size;          /* sizeof(fm_tar) */
    uint32_t version;       /* FM_TAR_VERSION */
    uint32_t fm_size;       /* sizeof(fm) */
    /* Extract the tar of a tree (file_tree.c, fm_extract_tar: its checks, limits and fix_fd
     * records) into root: from the host's current payload file (raw NULL; *ret_status receives
     * the host's read error, if any) or from the file raw (a staged copy of the payload). what
     * (the destination) names the tree in the message when the tar cannot be opened. */
    int (*extract)(fm *m, const char *raw, const char *what, const char *root, uint64_t avail,
                   int fix_fd, int *ret_status, struct molt_sdk_error *err);
} fm_tar;

/* file-tar.so's one exported symbol (FM_TAR_ENTRY): its table. */
typedef const fm_tar *(*fm_tar_entry_fn)(void);

/* The tar support, loaded on the first call of the process (dlopen of FM_TAR_DIR/FM_TAR_SO in the
 * folder of the file.so this code is part of; dladdr finds it). MOLT_EUNSUPPORTED with a message
 * naming the file when it is missing, does not load or is of another build. */
int fm_tar_load(const fm_tar **ret, struct molt_sdk_error *err);

/* Set err's code and message; returns code (libmolt-sdk's setter, under a short name). */
#define fm_err molt_sdk_err_set

#endif
