/* SPDX-License-Identifier: Apache-2.0 */
/* A fake host table for the file module's unit and fuzz tests: read_block serves a buffer in
 * 1000-byte blocks, config_get answers allowed_roots from two variables, log and progress do
 * nothing. */
#ifndef MOLT_FILE_FAKE_HOST_H
#define MOLT_FILE_FAKE_HOST_H

#include <stddef.h>
#include <molt/module.h>

extern const struct molt_host_api fake_host;
extern const char *fake_roots, *fake_roots0;   /* allowed_roots, allowed_roots.0 */
/* The payload read_block serves (not copied); at its end read_block returns fail (0 = the end
 * of the file with a matching checksum, or a negative code). */
void fake_payload(const void *data, size_t len, int fail);

#endif
