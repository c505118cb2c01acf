/* Small helpers shared by every part of mid: cleanup attributes, array
 * sizes and the hidden-visibility default. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define MID_ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define MID_UNUSED __attribute__((unused))
#define MID_MUST_CHECK __attribute__((warn_unused_result))
#define MID_EXPORT __attribute__((visibility("default")))
#define MID_PRINTF(a, b) __attribute__((format(printf, a, b)))

#define MID_CLEANUP(f) __attribute__((cleanup(f)))

static inline void mid_freep(void *p)
{
	free(*(void **)p);
}

static inline void mid_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

#define _cleanup_free_ MID_CLEANUP(mid_freep)
#define _cleanup_close_ MID_CLEANUP(mid_closep)

/* Hand ownership over: return the value and clear the variable so that a
 * cleanup attribute leaves it alone. */
#define MID_TAKE_PTR(p)                                                                            \
	({                                                                                         \
		__typeof__(p) _taken = (p);                                                        \
		(p) = NULL;                                                                        \
		_taken;                                                                            \
	})

#define MID_TAKE_FD(fd)                                                                            \
	({                                                                                         \
		int _taken = (fd);                                                                 \
		(fd) = -1;                                                                         \
		_taken;                                                                            \
	})
