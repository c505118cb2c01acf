/* Durations as people write them in mid.conf and on the command line:
 * "30s", "15m", "8h", "2d", "1w", combined as "1h30m"; a bare number is
 * seconds. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"

#define MID_DURATION_MAX UINT32_MAX /* seconds; the wire carries u32 */

/* Parses s into seconds. Returns 0, or -EINVAL for text that is not a
 * duration, or -ERANGE for one above MID_DURATION_MAX. */
MID_MUST_CHECK int duration_parse(const char *s, uint64_t *ret_seconds);
/* Formats seconds as the shortest combination of units ("1h30m", "0s"). */
void duration_format(uint64_t seconds, char *buf, size_t size);
