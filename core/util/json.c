/* SPDX-License-Identifier: Apache-2.0 */
#include "util/json.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>

const char *molt_json_unknown_key(const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        const char *const *p = allowed;
        while (*p && strcmp(*p, key) != 0)
            p++;
        if (!*p)
            return key;
    }
    return NULL;
}

void molt_json_seed(void)
{
    uint32_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed && seed != 0)
        json_object_seed(seed);
}
