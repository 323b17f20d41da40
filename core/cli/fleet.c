/* SPDX-License-Identifier: Apache-2.0 */
/* `molt daemon`, `molt check-update`, `molt send-inventory` (docs/fleet.md). */
#include "fleet.h"

#include <stdio.h>
#include <string.h>

#include "state/daemon.h"

bool molt_cli_fleet_command(const char *command)
{
    return strcmp(command, "daemon") == 0 || strcmp(command, "check-update") == 0 ||
           strcmp(command, "send-inventory") == 0;
}

int molt_cli_fleet(const char *command, const molt_config *cfg, bool check_only)
{
    molt_err err = {0};
    if (strcmp(command, "daemon") == 0 && check_only) {
        if (molt_daemon_check_config(cfg, &err) < 0) {
            fprintf(stderr, "molt daemon: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    if (strcmp(command, "daemon") == 0) {
        if (molt_daemon_run(cfg, &err) < 0) {
            fprintf(stderr, "molt daemon: %s\n", err.msg);
            return 1;
        }
        return 0;
    }
    int r = molt_daemon_control(cfg, command, &err);
    if (r < 0) {
        fprintf(stderr, "molt %s: %s\n", command, err.msg);
        return r == MOLT_ENOTFOUND ? 2 : 1;
    }
    return 0;
}
