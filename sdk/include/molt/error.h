/* SPDX-License-Identifier: Apache-2.0 */
/* molt error codes, shared by the core, the SDK and native modules.
 * Every function that can fail returns 0 or one of these (negative) codes. */
#ifndef MOLT_ERROR_H
#define MOLT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum molt_error_code {
    MOLT_OK = 0,
    MOLT_EINVAL = -1,       /* invalid argument or usage */
    MOLT_ENOMEM = -2,       /* out of memory */
    MOLT_EIO = -3,          /* an operating-system call failed (errno in the message) */
    MOLT_EFORMAT = -4,      /* malformed input: artifact, JSON, tar, protocol text */
    MOLT_ECHECKSUM = -5,    /* a checksum did not match */
    MOLT_ESIGNATURE = -6,   /* missing, malformed or not verifying signature */
    MOLT_EUNSUPPORTED = -7, /* well-formed but not supported (version, feature, algorithm) */
    MOLT_ELIMIT = -8,       /* a size or count limit was exceeded */
    MOLT_ENOTFOUND = -9,    /* a file, module, key or entry does not exist */
    MOLT_EDEPENDS = -10,    /* artifact depends not met by the device */
    MOLT_ETIMEOUT = -11,    /* an operation ran out of time */
    MOLT_EPROTOCOL = -12,   /* a peer (module, server) broke its protocol */
    MOLT_ESTATE = -13,      /* the operation does not fit the current state */
    MOLT_ENET = -14,        /* network or HTTP failure */
    MOLT_ETLS = -15,        /* TLS verification failure */
    MOLT_ECANCELED = -16,   /* aborted on request (signal, server abort) */
    MOLT_ECORRUPT = -17,    /* persistent data is torn or corrupt */
    MOLT_EMODULE = -18,     /* an update module reported failure */
    MOLT_ECONFIG = -19,     /* bad configuration */
    MOLT_ESPACE = -20,      /* not enough space on the target */
    /* A cause that can pass (an engine or a lock unavailable, a timeout): try again later. An
     * ArtifactRollback that fails with it stays pending and is retried (docs/cli.md). */
    MOLT_ETEMP = -21,
    /* New codes go above this line, each one below the last, and MOLT_E_END moves down with
     * them: a host or module treats a code below its MOLT_E_END as one it does not know. */
    MOLT_E_END = -22        /* sentinel, not a code: one below the lowest code */
};

/* A short, static, English description of a code ("checksum mismatch"). Never NULL. */
const char *molt_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
