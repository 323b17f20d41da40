/* SPDX-License-Identifier: Apache-2.0 */
/* molt's configuration: /etc/molt/molt.yaml (YAML, via libyaml). Every path can be changed, so
 * tests, the demo and a device run the same program. Unknown keys and wrong types are errors
 * that name the file and line. */
#ifndef MOLT_CONFIG_CONFIG_H
#define MOLT_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "util/err.h"

#define MOLT_DEFAULT_CONFIG "/etc/molt/molt.yaml"

/* The settings of one module under `modules: <name>:` in molt.yaml, flattened to strings: a scalar
 * gives "key" -> its text as written (no path resolution; the module interprets it); a list gives
 * "key" -> its items joined with '\n' and also "key.0", "key.1", ... -> each item. A null value
 * (`key:` or `key: ~`) leaves the key unset. */
typedef struct molt_module_config {
    char *name;                  /* the module's name (a native module's descriptor name) */
    char **keys;                 /* parallel arrays of n entries, in file order */
    char **values;
    size_t n;
} molt_module_config;

/* downgrade.scheme: how versions are compared (state/version.h). */
typedef enum molt_version_scheme {
    MOLT_VERSION_INTEGER = 0,
    MOLT_VERSION_SEMVER,
    MOLT_VERSION_DEBIAN,
} molt_version_scheme;

/* The name of scheme as molt.yaml spells it ("integer", "semver", "debian"). */
const char *molt_config_scheme_name(molt_version_scheme scheme);

/* The settings of molt.yaml, one field per key (the comment names it). What each key means:
 * docs/configuration.md; the defaults: the key table in config.c, and only there. */
typedef struct molt_config {
    char *path;                  /* the file it was loaded from, or NULL for defaults only */
    char *data_dir;              /* data_dir: the store, work trees, logs */
    char *device_type_file;      /* device_type_file */
    char **module_dirs;          /* module_dirs: exec modules, searched in order */
    size_t n_module_dirs;
    char *native_module_dir;     /* native_module_dir */
    char **native_isolated_modules;   /* native_isolated_modules: native module files whose
                                         calls each run in a forked child */
    size_t n_native_isolated_modules;
    char **verify_keys;          /* artifact_verify_keys: PEM public keys */
    size_t n_verify_keys;
    char *scripts_dir;           /* scripts_dir: Idle, Sync, Download scripts */
    int module_timeout;          /* module_timeout: seconds */
    int script_timeout;          /* state_script_timeout */
    int script_retry_interval;   /* state_script_retry_interval */
    int script_retry_timeout;    /* state_script_retry_timeout */
    int max_state_loops;         /* max_state_loops (per deployment) */
    int keep_logs;               /* keep_deployment_logs */
    char *log_level;             /* log_level: error|warning|info|debug */
    char *ca_file;               /* http.ca_file: NULL = system store */
    int retry_download_count;    /* http.retry_download_count */
    int retry_max_interval;      /* http.retry_max_interval: seconds (backoff cap) */
    int connect_timeout;         /* http.connect_timeout: seconds */
    int low_speed_time;          /* http.low_speed_time: seconds below 1 byte/s = dead */
    /* server: the Mender server (docs/fleet.md); used by `molt daemon` only, but for server.proxy,
       which the artifact downloads of `molt install URL` use too. */
    char *server_url;            /* server.url: NULL = no server (the daemon refuses to start) */
    char *tenant_token;          /* server.tenant_token: NULL = none (open-source server) */
    int update_poll_interval;    /* server.update_poll_interval: seconds */
    int inventory_poll_interval; /* server.inventory_poll_interval: seconds */
    int retry_poll_interval;     /* server.retry_poll_interval: backoff cap (starts at 60, or
                                    fixed when < 60) */
    char *device_key;            /* server.device_key: a path or a pkcs11: URI */
    char *device_key_type;       /* server.device_key_type: ed25519 | rsa3072 | ecdsa-p256 */
    char *pkcs11_module;         /* server.pkcs11_module: the PKCS#11 library of a pkcs11: key,
                                    NULL = the pkcs11 engine's default (p11-kit's proxy) */
    char **identity_scripts;     /* server.identity_scripts: the first that exists runs */
    size_t n_identity_scripts;
    char **inventory_dirs;       /* server.inventory_dirs (mender-inventory-* / molt-inventory-*) */
    size_t n_inventory_dirs;
    char *client_cert;           /* server.client_cert: PEM certificate for mTLS, NULL = none */
    char *client_key;            /* server.client_key: its key */
    char *proxy;                 /* server.proxy: NULL = the environment's (https_proxy ...) */
    char *control_socket;        /* server.control_socket */
    char *reboot_command;        /* server.reboot_command (run with /bin/sh -c), NULL = none */
    /* downgrade: the downgrade policy (docs/configuration.md). */
    int downgrade_refuse;        /* downgrade.policy: refuse (1) | allow (0) */
    char *downgrade_key;         /* downgrade.key: the provide holding the version */
    molt_version_scheme downgrade_scheme;   /* downgrade.scheme: integer | semver | debian */
    molt_module_config *modules; /* modules: per-module settings */
    size_t n_modules;
} molt_config;

/* Load path (NULL = MOLT_DEFAULT_CONFIG; a missing default file gives the defaults, a missing
 * named file is an error). *ret is owned by the caller (molt_config_free). */
int molt_config_load(molt_config **ret, const char *path, molt_err *err);
void molt_config_free(molt_config *cfg);

/* The value of key in module's settings (`modules: <module>: <key>`), or NULL when the module or
 * the key is not configured. The string belongs to cfg. */
const char *molt_config_module_get(const molt_config *cfg, const char *module, const char *key);

/* molt.yaml's keys, for the tests that hold docs/configuration.md and examples/molt.yaml to
 * them: key i (from 0; false past the last, in the documentation's order) has the full name
 * *ret_name ("data_dir", "http", "http.ca_file") and the default *ret_def as molt.yaml writes it
 * (YAML flow style: "14400", "null", "[/a, /b]", "{}"), or "<data_dir>/<file>" for a path that
 * follows data_dir, or NULL for a mapping of keys ("http"). The strings are static. */
bool molt_config_key(size_t i, const char **ret_name, const char **ret_def);

/* The value of key (a full name, as molt_config_key gives) in cfg, written as the defaults are:
 * a string or path as it is, "null", an integer, "[a, b]", a word (allow, semver), or for
 * modules "{}" / "{name: {...}, ...}". *ret malloc'd. MOLT_ENOTFOUND for an unknown key or a
 * mapping of keys, MOLT_ENOMEM. */
int molt_config_value(const molt_config *cfg, const char *key, char **ret);

/* Device type from device_type_file ("device_type=<value>\n"); *ret malloc'd. */
int molt_config_device_type(const molt_config *cfg, char **ret, molt_err *err);

#endif
