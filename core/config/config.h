/* SPDX-License-Identifier: Apache-2.0 */
/* molt's configuration: /etc/molt/molt.yaml (YAML, via libyaml). Every path can be changed, so
 * tests, the demo and a device run the same program. Unknown keys and wrong types are errors
 * that name the file and line. */
#ifndef MOLT_CONFIG_CONFIG_H
#define MOLT_CONFIG_CONFIG_H

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

typedef struct molt_config {
    char *path;                  /* the file it was loaded from, or NULL for defaults only */
    char *data_dir;              /* data_dir: /var/lib/molt (store, work trees, logs) */
    char *device_type_file;      /* device_type_file: <data_dir>/device_type */
    char **module_dirs;          /* module_dirs: exec modules, searched in order;
                                    default /usr/share/molt/modules/v3, /usr/share/mender/modules/v3 */
    size_t n_module_dirs;
    char *native_module_dir;     /* native_module_dir: /usr/lib/molt/modules */
    char **native_isolated_modules;   /* native_isolated_modules: native module files whose
                                         calls each run in a forked child; default none */
    size_t n_native_isolated_modules;
    char **verify_keys;          /* artifact_verify_keys: PEM public keys */
    size_t n_verify_keys;
    char *scripts_dir;           /* scripts_dir: /etc/molt/scripts (Idle, Sync, Download scripts) */
    int module_timeout;          /* module_timeout: seconds, default 14400 */
    int script_timeout;          /* state_script_timeout: 3600 */
    int script_retry_interval;   /* state_script_retry_interval: 60 */
    int script_retry_timeout;    /* state_script_retry_timeout: 1800 */
    int max_state_loops;         /* max_state_loops: 28 (per deployment) */
    int keep_logs;               /* keep_deployment_logs: 5 */
    char *log_level;             /* log_level: error|warning|info|debug, default info */
    char *ca_file;               /* http.ca_file: NULL = system store */
    int retry_download_count;    /* http.retry_download_count: 10 */
    int retry_max_interval;      /* http.retry_max_interval: 300 seconds (backoff cap) */
    int connect_timeout;         /* http.connect_timeout: 30 seconds */
    int low_speed_time;          /* http.low_speed_time: 60 seconds below 1 byte/s = dead */
    /* server: the Mender server (docs/fleet.md); used by `molt daemon` only, but for server.proxy,
       which the artifact downloads of `molt install URL` use too. */
    char *server_url;            /* server.url: null = no server (the daemon refuses to start) */
    char *tenant_token;          /* server.tenant_token: null = none (open-source server) */
    int update_poll_interval;    /* server.update_poll_interval: 1800 seconds */
    int inventory_poll_interval; /* server.inventory_poll_interval: 28800 seconds */
    int retry_poll_interval;     /* server.retry_poll_interval: 300 (backoff cap; starts at 60,
                                    or fixed when < 60) */
    char *device_key;            /* server.device_key: <data_dir>/device-key.pem (or a pkcs11: URI) */
    char *device_key_type;       /* server.device_key_type: ed25519 | rsa3072 | ecdsa-p256 */
    char *pkcs11_module;         /* server.pkcs11_module: the PKCS#11 library of a pkcs11: key,
                                    null = the pkcs11 engine's default (p11-kit's proxy) */
    char **identity_scripts;     /* server.identity_scripts: the first that exists runs; default
                                    /usr/share/molt/identity/molt-device-identity,
                                    /usr/share/mender/identity/mender-device-identity */
    size_t n_identity_scripts;
    char **inventory_dirs;       /* server.inventory_dirs: /usr/share/mender/inventory,
                                    /usr/share/molt/inventory (mender-inventory-* / molt-inventory-*) */
    size_t n_inventory_dirs;
    char *client_cert;           /* server.client_cert: PEM certificate for mTLS, null = none */
    char *client_key;            /* server.client_key: its key */
    char *proxy;                 /* server.proxy: null = the environment's (https_proxy ...) */
    char *control_socket;        /* server.control_socket: /run/molt/molt.sock */
    char *reboot_command;        /* server.reboot_command: "reboot" (run with /bin/sh -c) */
    /* downgrade: the downgrade policy (docs/configuration.md); default allow, as Mender. */
    int downgrade_refuse;        /* downgrade.policy: refuse (1) | allow (0) */
    char *downgrade_key;         /* downgrade.key: the provide holding the version;
                                    default rootfs-image.version */
    molt_version_scheme downgrade_scheme;   /* downgrade.scheme: integer | semver | debian
                                               (default semver) */
    molt_module_config *modules; /* modules: per-module settings (default none) */
    size_t n_modules;
} molt_config;

/* Load path (NULL = MOLT_DEFAULT_CONFIG; a missing default file gives the defaults, a missing
 * named file is an error). *ret is owned by the caller (molt_config_free). */
int molt_config_load(molt_config **ret, const char *path, molt_err *err);
void molt_config_free(molt_config *cfg);

/* The value of key in module's settings (`modules: <module>: <key>`), or NULL when the module or
 * the key is not configured. The string belongs to cfg. */
const char *molt_config_module_get(const molt_config *cfg, const char *module, const char *key);

/* Device type from device_type_file ("device_type=<value>\n"); *ret malloc'd. */
int molt_config_device_type(const molt_config *cfg, char **ret, molt_err *err);

#endif
