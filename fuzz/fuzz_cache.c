/* libFuzzer target for the NSS cache reader: every input is a candidate
 * cache file, opened with mid_cache_open and, if accepted, read through
 * every lookup and the enumeration. Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I lib -include config.h \
 *       fuzz/fuzz_cache.c lib/cache.c -o fuzz_cache
 *   ./fuzz_cache -max_total_time=60 CORPUS_DIR
 * where config.h comes from configure, and CORPUS_DIR may hold caches
 * written by tests/nss/mkcache. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "cache.h"

static const char *const probe_names[] = {"", "root", "alice", "mid-eph-1"};
static const uint32_t probe_ids[] = {0, 1, 60001, UINT32_MAX};

/* Reads every string of a view. AddressSanitizer then checks each byte up
 * to the NUL, which must lie inside the map. */
static void user_view_touch(const struct mid_cache_user_view *u)
{
	volatile size_t sum =
	    strlen(u->name) + strlen(u->gecos) + strlen(u->dir) + strlen(u->shell);
	(void)sum;
}

static void group_view_touch(const struct mid_cache_group_view *g)
{
	volatile size_t sum = strlen(g->name);
	(void)sum;
}

static void cache_exercise(const struct mid_cache *cache, int64_t now)
{
	struct mid_cache_user_view u;
	struct mid_cache_group_view g;

	for (uint32_t i = 0;; i++) {
		int r = mid_cache_user_at(cache, i, now, &u);

		if (r == -ERANGE)
			break;
		if (r < 0)
			continue;
		user_view_touch(&u);
		if (mid_cache_find_user_by_name(cache, u.name, now, &u) == 0)
			user_view_touch(&u);
		if (mid_cache_find_user_by_uid(cache, u.uid, now, &u) == 0)
			user_view_touch(&u);
		(void)mid_cache_is_managed(cache, u.name);
	}

	for (uint32_t i = 0;; i++) {
		int r = mid_cache_group_at(cache, i, now, &g);

		if (r == -ERANGE)
			break;
		if (r < 0)
			continue;
		group_view_touch(&g);
		if (mid_cache_find_group_by_name(cache, g.name, now, &g) == 0)
			group_view_touch(&g);
		if (mid_cache_find_group_by_gid(cache, g.gid, now, &g) == 0)
			group_view_touch(&g);
	}

	for (size_t i = 0; i < MID_ELEMENTSOF(probe_names); i++) {
		if (mid_cache_find_user_by_name(cache, probe_names[i], now, &u) == 0)
			user_view_touch(&u);
		if (mid_cache_find_group_by_name(cache, probe_names[i], now, &g) == 0)
			group_view_touch(&g);
		(void)mid_cache_is_managed(cache, probe_names[i]);
	}
	for (size_t i = 0; i < MID_ELEMENTSOF(probe_ids); i++) {
		if (mid_cache_find_user_by_uid(cache, probe_ids[i], now, &u) == 0)
			user_view_touch(&u);
		if (mid_cache_find_group_by_gid(cache, probe_ids[i], now, &g) == 0)
			group_view_touch(&g);
	}
	(void)mid_cache_is_stale(cache);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One memfd for the whole run: mid_cache_open needs a path, and
	 * /proc/self/fd/N names the memfd without touching the disk. */
	static int fd = -1;
	static char path[64];
	struct mid_cache cache;

	if (fd < 0) {
		fd = memfd_create("fuzz_cache", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0)
		abort();
	if (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();

	if (mid_cache_open(path, &cache) < 0)
		return 0;
	/* INT64_MIN hides no record, 0 hides those with a past expiry. */
	cache_exercise(&cache, INT64_MIN);
	cache_exercise(&cache, 0);
	mid_cache_close(&cache);
	return 0;
}
