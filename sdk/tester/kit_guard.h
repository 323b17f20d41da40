/* SPDX-License-Identifier: Apache-2.0 */
/* The kit's guards (device.c, kit_shim.c): against a hang only, never a time a step is expected
 * to take (docs/testing.md, "Under load"). A call held at a kill point sleeps
 * KIT_KILL_POINT_SLEEP seconds, far longer than any machine needs to reach the kit's kill; the
 * scratch device's module_timeout lets it (the kit's cut, not molt's timeout, ends that call);
 * and the kit gives up on one molt command only after KIT_COMMAND_TIMEOUT. */
#ifndef MOLT_KIT_GUARD_H
#define MOLT_KIT_GUARD_H

#define KIT_KILL_POINT_SLEEP 3600
#define KIT_MODULE_TIMEOUT (KIT_KILL_POINT_SLEEP + 300)
#define KIT_COMMAND_TIMEOUT (KIT_MODULE_TIMEOUT + 300)

#endif
