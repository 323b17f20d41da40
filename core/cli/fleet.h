/* SPDX-License-Identifier: Apache-2.0 */
/* The `molt` commands for a Mender server: daemon, check-update, send-inventory. */
#ifndef MOLT_CLI_FLEET_H
#define MOLT_CLI_FLEET_H

#include <stdbool.h>
#include "config/config.h"

/* Whether command is one of them. */
bool molt_cli_fleet_command(const char *command);

/* Run it; returns the exit code (0 ok, 1 failure; check-update and send-inventory: 2 when no
 * daemon is running). check_only (daemon --check): 0 when cfg lets the daemon start, else 1
 * with the reason on stderr; nothing is started. */
int molt_cli_fleet(const char *command, const molt_config *cfg, bool check_only);

#endif
