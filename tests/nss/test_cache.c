/* Tests of the NSS cache: files written by the builder read back through
 * the reader, and hand-corrupted files the reader must reject. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"

#define NOW INT64_C(1700000000)

struct fixture {
	char dir[256];
	char path[320];
};

static int fixture_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/test_cache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/nss.cache", fx->dir);
	*state = fx;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *fx = *state;
	DIR *d = opendir(fx->dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char p[600];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
		if (unlink(p) < 0)
			rmdir(p);
	}
	if (d)
		closedir(d);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* Three users and their groups: alice and bob are live at NOW, carol
 * expires exactly at NOW and so is hidden. dave is managed without an
 * account. */
static void sample_publish(const char *path, uint64_t generation)
{
	struct mid_cache_builder *b = NULL;

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_user(b, "alice", 60001, 60001, "Alice Ephemeral",
						    "/home/alice", "/bin/bash", NOW + 3600),
			 0);
	assert_int_equal(mid_cache_builder_add_user(b, "bob", 60002, 60002, NULL, "/home/bob",
						    "/bin/bash", NOW + 60),
			 0);
	assert_int_equal(
	    mid_cache_builder_add_user(b, "carol", 60003, 60003, "", "/home/carol", "/bin/sh", NOW),
	    0);
	assert_int_equal(mid_cache_builder_add_group(b, "alice", 60001, NOW + 3600), 0);
	assert_int_equal(mid_cache_builder_add_group(b, "bob", 60002, NOW + 60), 0);
	assert_int_equal(mid_cache_builder_add_group(b, "carol", 60003, NOW), 0);
	assert_int_equal(mid_cache_builder_add_managed(b, "alice"), 0);
	assert_int_equal(mid_cache_builder_add_managed(b, "bob"), 0);
	assert_int_equal(mid_cache_builder_add_managed(b, "carol"), 0);
	assert_int_equal(mid_cache_builder_add_managed(b, "dave"), 0);
	assert_int_equal(mid_cache_builder_publish(b, path, generation, NOW), 0);
	mid_cache_builder_free(b);
}

static void sample_open(struct fixture *fx, struct mid_cache *cache)
{
	sample_publish(fx->path, 1);
	assert_int_equal(mid_cache_open(fx->path, cache), 0);
}

static size_t dir_entry_count(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* ---- lookups ---- */

static void test_user_by_name(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u;

	sample_open(*state, &cache);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alice", NOW, &u), 0);
	assert_string_equal(u.name, "alice");
	assert_int_equal(u.uid, 60001);
	assert_int_equal(u.gid, 60001);
	assert_string_equal(u.gecos, "Alice Ephemeral");
	assert_string_equal(u.dir, "/home/alice");
	assert_string_equal(u.shell, "/bin/bash");
	assert_int_equal(u.expires_at, NOW + 3600);

	assert_int_equal(mid_cache_find_user_by_name(&cache, "bob", NOW, &u), 0);
	assert_string_equal(u.name, "bob");
	assert_string_equal(u.gecos, "");
	mid_cache_close(&cache);
}

static void test_user_by_name_miss(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u = {.name = "sentinel"};

	sample_open(*state, &cache);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "mallory", NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "", NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_user_by_name(&cache, NULL, NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alic", NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alicee", NOW, &u), -ENOENT);
	assert_string_equal(u.name, "sentinel");
	mid_cache_close(&cache);
}

static void test_user_by_uid(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u = {.name = "sentinel"};

	sample_open(*state, &cache);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 60002, NOW, &u), 0);
	assert_string_equal(u.name, "bob");
	assert_int_equal(u.uid, 60002);
	assert_string_equal(u.dir, "/home/bob");

	u.name = "sentinel";
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 0, NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 60004, NOW, &u), -ENOENT);
	assert_string_equal(u.name, "sentinel");
	mid_cache_close(&cache);
}

static void test_group_by_name_and_gid(void **state)
{
	struct mid_cache cache;
	struct mid_cache_group_view g = {.name = "sentinel"};

	sample_open(*state, &cache);
	assert_int_equal(mid_cache_find_group_by_name(&cache, "alice", NOW, &g), 0);
	assert_string_equal(g.name, "alice");
	assert_int_equal(g.gid, 60001);
	assert_int_equal(g.expires_at, NOW + 3600);

	assert_int_equal(mid_cache_find_group_by_gid(&cache, 60002, NOW, &g), 0);
	assert_string_equal(g.name, "bob");

	g.name = "sentinel";
	assert_int_equal(mid_cache_find_group_by_name(&cache, "users", NOW, &g), -ENOENT);
	assert_int_equal(mid_cache_find_group_by_name(&cache, NULL, NOW, &g), -ENOENT);
	assert_int_equal(mid_cache_find_group_by_gid(&cache, 100, NOW, &g), -ENOENT);
	assert_string_equal(g.name, "sentinel");
	mid_cache_close(&cache);
}

static void test_expiry_hides_records(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u;
	struct mid_cache_group_view g;

	sample_open(*state, &cache);

	/* carol expires at NOW, so she is visible one second before and
	 * hidden from NOW on. */
	assert_int_equal(mid_cache_find_user_by_name(&cache, "carol", NOW - 1, &u), 0);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "carol", NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 60003, NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_group_by_name(&cache, "carol", NOW, &g), -ENOENT);
	assert_int_equal(mid_cache_find_group_by_gid(&cache, 60003, NOW, &g), -ENOENT);
	assert_int_equal(mid_cache_find_group_by_gid(&cache, 60003, NOW - 1, &g), 0);

	/* bob expires at NOW + 60. */
	assert_int_equal(mid_cache_find_user_by_name(&cache, "bob", NOW + 59, &u), 0);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "bob", NOW + 60, &u), -ENOENT);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 60002, NOW + 61, &u), -ENOENT);
	mid_cache_close(&cache);
}

static void test_enumeration(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u;
	struct mid_cache_group_view g;

	sample_open(*state, &cache);

	assert_int_equal(mid_cache_user_at(&cache, 0, NOW, &u), 0);
	assert_string_equal(u.name, "alice");
	assert_int_equal(mid_cache_user_at(&cache, 1, NOW, &u), 0);
	assert_string_equal(u.name, "bob");
	assert_int_equal(mid_cache_user_at(&cache, 2, NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_user_at(&cache, 2, NOW - 1, &u), 0);
	assert_string_equal(u.name, "carol");
	assert_int_equal(mid_cache_user_at(&cache, 3, NOW, &u), -ERANGE);
	assert_int_equal(mid_cache_user_at(&cache, UINT32_MAX, NOW, &u), -ERANGE);

	assert_int_equal(mid_cache_group_at(&cache, 0, NOW, &g), 0);
	assert_string_equal(g.name, "alice");
	assert_int_equal(mid_cache_group_at(&cache, 1, NOW, &g), 0);
	assert_string_equal(g.name, "bob");
	assert_int_equal(mid_cache_group_at(&cache, 2, NOW, &g), -ENOENT);
	assert_int_equal(mid_cache_group_at(&cache, 3, NOW, &g), -ERANGE);
	mid_cache_close(&cache);
}

static void test_managed_names(void **state)
{
	struct mid_cache cache;

	sample_open(*state, &cache);
	assert_int_equal(mid_cache_is_managed(&cache, "alice"), 1);
	assert_int_equal(mid_cache_is_managed(&cache, "carol"), 1);
	assert_int_equal(mid_cache_is_managed(&cache, "dave"), 1);
	assert_int_equal(mid_cache_is_managed(&cache, "root"), 0);
	assert_int_equal(mid_cache_is_managed(&cache, ""), 0);
	assert_int_equal(mid_cache_is_managed(&cache, NULL), 0);
	mid_cache_close(&cache);
}

static void test_header_fields(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache cache;
	struct stat st;

	sample_publish(fx->path, 42);
	assert_int_equal(mid_cache_open(fx->path, &cache), 0);
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(cache.header->generation, 42);
	assert_int_equal(cache.header->written_at, NOW);
	assert_int_equal(cache.header->n_users, 3);
	assert_int_equal(cache.header->n_groups, 3);
	assert_int_equal(cache.header->n_managed, 4);
	assert_int_equal(cache.size, st.st_size);
	assert_int_equal(cache.ino, st.st_ino);
	assert_int_equal(cache.dev, st.st_dev);
	assert_false(mid_cache_is_stale(&cache));
	mid_cache_close(&cache);
	assert_null(cache.map);
}

static void test_strings_shared(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view alice;
	struct mid_cache_user_view bob;

	sample_open(*state, &cache);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alice", NOW, &alice), 0);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "bob", NOW, &bob), 0);
	assert_ptr_equal(alice.shell, bob.shell);
	/* Every empty string is the one at offset 0. */
	assert_ptr_equal(bob.gecos, (const char *)cache.map + cache.header->strings_off);
	mid_cache_close(&cache);
}

static void test_empty_cache(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_builder *b = NULL;
	struct mid_cache cache;
	struct mid_cache_user_view u;
	struct mid_cache_group_view g;

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_publish(b, fx->path, 1, NOW), 0);
	mid_cache_builder_free(b);

	assert_int_equal(mid_cache_open(fx->path, &cache), 0);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alice", NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 0, NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_group_by_gid(&cache, 0, NOW, &g), -ENOENT);
	assert_int_equal(mid_cache_user_at(&cache, 0, NOW, &u), -ERANGE);
	assert_int_equal(mid_cache_group_at(&cache, 0, NOW, &g), -ERANGE);
	assert_int_equal(mid_cache_is_managed(&cache, "alice"), 0);
	mid_cache_close(&cache);
}

static void test_many_records(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_builder *b = NULL;
	struct mid_cache cache;
	const uint32_t n = 100000;
	char name[32];
	uint32_t misses = 0;

	assert_int_equal(mid_cache_builder_new(&b), 0);
	for (uint32_t i = 0; i < n; i++) {
		char dir[64];

		snprintf(name, sizeof(name), "eph%u", i);
		snprintf(dir, sizeof(dir), "/home/%s", name);
		assert_int_equal(mid_cache_builder_add_user(b, name, 100000 + i, 100000 + i, NULL,
							    dir, "/bin/bash", NOW + 1),
				 0);
		assert_int_equal(mid_cache_builder_add_group(b, name, 100000 + i, NOW + 1), 0);
		assert_int_equal(mid_cache_builder_add_managed(b, name), 0);
	}
	assert_int_equal(mid_cache_builder_publish(b, fx->path, 1, NOW), 0);
	mid_cache_builder_free(b);

	assert_int_equal(mid_cache_open(fx->path, &cache), 0);
	assert_int_equal(cache.header->n_users, n);
	assert_true(cache.header->user_buckets >= 2 * n);
	assert_int_equal(cache.header->user_buckets & (cache.header->user_buckets - 1), 0);

	/* One assert per kind of lookup, counting failures, keeps the output
	 * short while any single miss still fails the test. */
	for (uint32_t i = 0; i < n; i++) {
		struct mid_cache_user_view u;
		struct mid_cache_group_view g;

		snprintf(name, sizeof(name), "eph%u", i);
		if (mid_cache_find_user_by_name(&cache, name, NOW, &u) != 0 || u.uid != 100000 + i)
			misses++;
		if (mid_cache_find_user_by_uid(&cache, 100000 + i, NOW, &u) != 0 ||
		    strcmp(u.name, name) != 0)
			misses++;
		if (mid_cache_find_group_by_name(&cache, name, NOW, &g) != 0 || g.gid != 100000 + i)
			misses++;
		if (mid_cache_find_group_by_gid(&cache, 100000 + i, NOW, &g) != 0)
			misses++;
		if (mid_cache_is_managed(&cache, name) != 1)
			misses++;
	}
	assert_int_equal(misses, 0);
	mid_cache_close(&cache);
}

/* ---- changes to a kept builder ---- */

/* Removes two users in three, in a scrambled order, from a builder whose
 * probe runs are long enough to need entries moved back. Every other user
 * must still be found by name and uid with its own fields. */
static void test_remove_keeps_others(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_builder *b = NULL;
	struct mid_cache cache;
	const uint32_t n = 4000;
	uint32_t misses = 0, leftovers = 0, wrong = 0;
	char name[32], dir[64];

	assert_int_equal(mid_cache_builder_new(&b), 0);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "k%u", i);
		snprintf(dir, sizeof(dir), "/home/k%u", i);
		assert_int_equal(mid_cache_builder_add_user(b, name, 200000 + i, 7, NULL, dir,
							    "/bin/sh", NOW + 60),
				 0);
	}
	/* 1237 is prime to n, so i * 1237 % n visits every record once. */
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = (uint32_t)((uint64_t)k * 1237 % n);

		if (i % 3 == 0)
			continue;
		snprintf(name, sizeof(name), "k%u", i);
		if (mid_cache_builder_remove_user(b, name) != 0)
			wrong++;
	}
	assert_int_equal(wrong, 0);
	assert_int_equal(mid_cache_builder_n_users(b), (n + 2) / 3);
	assert_int_equal(mid_cache_builder_publish(b, fx->path, 1, NOW), 0);
	mid_cache_builder_free(b);

	assert_int_equal(mid_cache_open(fx->path, &cache), 0);
	for (uint32_t i = 0; i < n; i++) {
		struct mid_cache_user_view u;
		int by_name, by_uid;

		snprintf(name, sizeof(name), "k%u", i);
		snprintf(dir, sizeof(dir), "/home/k%u", i);
		by_name = mid_cache_find_user_by_name(&cache, name, NOW, &u);
		if (by_name == 0 && (u.uid != 200000 + i || strcmp(u.dir, dir) != 0))
			wrong++;
		by_uid = mid_cache_find_user_by_uid(&cache, 200000 + i, NOW, &u);
		if (by_uid == 0 && strcmp(u.name, name) != 0)
			wrong++;
		if (i % 3 == 0)
			misses += (by_name != 0) + (by_uid != 0);
		else
			leftovers += (by_name != -ENOENT) + (by_uid != -ENOENT);
	}
	assert_int_equal(wrong, 0);
	assert_int_equal(misses, 0);
	assert_int_equal(leftovers, 0);
	mid_cache_close(&cache);
}

static void test_remove_missing(void **state)
{
	struct mid_cache_builder *b = NULL;

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_user(b, "alice", 60001, 60001, NULL, "/home/alice",
						    "/bin/sh", NOW + 60),
			 0);
	assert_int_equal(mid_cache_builder_remove_user(b, "bob"), -ENOENT);
	assert_int_equal(mid_cache_builder_remove_user(b, "bad:name"), -EINVAL);
	assert_int_equal(mid_cache_builder_remove_user(b, "alice"), 0);
	assert_int_equal(mid_cache_builder_remove_user(b, "alice"), -ENOENT);
	assert_int_equal(mid_cache_builder_n_users(b), 0);
	/* The name can come back, with a new uid. */
	assert_int_equal(mid_cache_builder_add_user(b, "alice", 60009, 60001, NULL, "/home/alice",
						    "/bin/sh", NOW + 60),
			 0);
	assert_int_equal(mid_cache_builder_n_users(b), 1);
	mid_cache_builder_free(b);
}

static void test_set_expiry(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_builder *b = NULL;
	struct mid_cache_user_view u;
	struct mid_cache_group_view g;
	struct mid_cache cache;

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_user(b, "alice", 60001, 500, NULL, "/home/alice",
						    "/bin/sh", NOW + 60),
			 0);
	assert_int_equal(mid_cache_builder_add_user(b, "bob", 60002, 500, NULL, "/home/bob",
						    "/bin/sh", NOW + 90),
			 0);
	assert_int_equal(mid_cache_builder_gid_expiry(b, 500), NOW + 90);
	assert_int_equal(mid_cache_builder_gid_expiry(b, 501), 0);

	assert_int_equal(mid_cache_builder_set_user_expiry(b, "bob", NOW), 0);
	assert_int_equal(mid_cache_builder_set_user_expiry(b, "carol", NOW), -ENOENT);
	assert_int_equal(mid_cache_builder_gid_expiry(b, 500), NOW + 60);

	assert_int_equal(mid_cache_builder_set_group_expiry(b, "crew", 500, NOW + 30), 0);
	assert_int_equal(mid_cache_builder_set_group_expiry(b, "crew", 500, NOW + 60), 0);
	assert_int_equal(mid_cache_builder_set_group_expiry(b, "crew", 501, NOW + 60), -EEXIST);
	assert_int_equal(mid_cache_builder_publish(b, fx->path, 1, NOW), 0);
	mid_cache_builder_free(b);

	assert_int_equal(mid_cache_open(fx->path, &cache), 0);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alice", NOW, &u), 0);
	assert_int_equal(u.expires_at, NOW + 60);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "bob", NOW, &u), -ENOENT);
	assert_int_equal(mid_cache_find_group_by_name(&cache, "crew", NOW, &g), 0);
	assert_int_equal(g.gid, 500);
	assert_int_equal(mid_cache_find_group_by_name(&cache, "crew", NOW + 59, &g), 0);
	assert_int_equal(mid_cache_find_group_by_name(&cache, "crew", NOW + 60, &g), -ENOENT);
	assert_int_equal(cache.header->n_groups, 1);
	mid_cache_close(&cache);
}

/* ---- builder input checks ---- */

static void test_duplicate_rejected(void **state)
{
	struct mid_cache_builder *b = NULL;

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(
	    mid_cache_builder_add_user(b, "alice", 60001, 60001, NULL, "/", "/bin/sh", NOW), 0);
	assert_int_equal(
	    mid_cache_builder_add_user(b, "alice", 60002, 60002, NULL, "/", "/bin/sh", NOW),
	    -EEXIST);
	assert_int_equal(
	    mid_cache_builder_add_user(b, "bob", 60001, 60002, NULL, "/", "/bin/sh", NOW), -EEXIST);
	assert_int_equal(mid_cache_builder_add_group(b, "alice", 60001, NOW), 0);
	assert_int_equal(mid_cache_builder_add_group(b, "alice", 60002, NOW), -EEXIST);
	assert_int_equal(mid_cache_builder_add_group(b, "bob", 60001, NOW), -EEXIST);
	assert_int_equal(mid_cache_builder_add_managed(b, "alice"), 0);
	assert_int_equal(mid_cache_builder_add_managed(b, "alice"), -EEXIST);
	mid_cache_builder_free(b);
}

static void test_rejected_input_leaves_builder(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_builder *b = NULL;
	struct mid_cache cache;
	struct mid_cache_user_view u;

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(
	    mid_cache_builder_add_user(b, "alice", 60001, 60001, NULL, "/", "/bin/sh", NOW + 1), 0);
	assert_int_equal(
	    mid_cache_builder_add_user(b, "bob", 60001, 60002, NULL, "/", "/bin/sh", NOW + 1),
	    -EEXIST);
	assert_int_equal(mid_cache_builder_publish(b, fx->path, 1, NOW), 0);
	mid_cache_builder_free(b);

	assert_int_equal(mid_cache_open(fx->path, &cache), 0);
	assert_int_equal(cache.header->n_users, 1);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "bob", NOW, &u), -ENOENT);
	mid_cache_close(&cache);
}

static void test_invalid_names_rejected(void **state)
{
	struct mid_cache_builder *b = NULL;
	char long_name[MID_CACHE_NAME_MAX + 2];

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_user(b, NULL, 1, 1, NULL, "/", "/bin/sh", NOW),
			 -EINVAL);
	assert_int_equal(mid_cache_builder_add_user(b, "", 1, 1, NULL, "/", "/bin/sh", NOW),
			 -EINVAL);
	assert_int_equal(mid_cache_builder_add_user(b, "a:b", 1, 1, NULL, "/", "/bin/sh", NOW),
			 -EINVAL);
	assert_int_equal(mid_cache_builder_add_user(b, "a\nb", 1, 1, NULL, "/", "/bin/sh", NOW),
			 -EINVAL);
	assert_int_equal(mid_cache_builder_add_user(b, long_name, 1, 1, NULL, "/", "/bin/sh", NOW),
			 -EINVAL);
	assert_int_equal(mid_cache_builder_add_group(b, "", 1, NOW), -EINVAL);
	assert_int_equal(mid_cache_builder_add_group(b, "x:y", 1, NOW), -EINVAL);
	assert_int_equal(mid_cache_builder_add_group(b, long_name, 1, NOW), -EINVAL);
	assert_int_equal(mid_cache_builder_add_managed(b, ""), -EINVAL);
	assert_int_equal(mid_cache_builder_add_managed(b, "x\n"), -EINVAL);
	assert_int_equal(mid_cache_builder_add_managed(b, NULL), -EINVAL);

	/* The longest accepted name is MID_CACHE_NAME_MAX bytes. */
	long_name[MID_CACHE_NAME_MAX] = '\0';
	assert_int_equal(mid_cache_builder_add_user(b, long_name, 1, 1, NULL, "/", "/bin/sh", NOW),
			 0);
	mid_cache_builder_free(b);
}

static void test_invalid_fields_rejected(void **state)
{
	struct mid_cache_builder *b = NULL;

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_user(b, "a", 1, 1, "x:y", "/", "/bin/sh", NOW),
			 -EINVAL);
	assert_int_equal(mid_cache_builder_add_user(b, "a", 1, 1, NULL, "/ho\nme", "/bin/sh", NOW),
			 -EINVAL);
	assert_int_equal(mid_cache_builder_add_user(b, "a", 1, 1, NULL, "/", "/bin:/sh", NOW),
			 -EINVAL);
	assert_int_equal(
	    mid_cache_builder_add_user(b, "a", (uid_t)-1, 1, NULL, "/", "/bin/sh", NOW), -EINVAL);
	assert_int_equal(
	    mid_cache_builder_add_user(b, "a", 1, (gid_t)-1, NULL, "/", "/bin/sh", NOW), -EINVAL);
	assert_int_equal(mid_cache_builder_add_group(b, "a", (gid_t)-1, NOW), -EINVAL);
	mid_cache_builder_free(b);
}

/* ---- publishing ---- */

static void test_publish_file_mode(void **state)
{
	struct fixture *fx = *state;
	struct stat st;
	mode_t old_umask = umask(077);

	sample_publish(fx->path, 1);
	umask(old_umask);
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(dir_entry_count(fx->dir), 1);
}

static void test_publish_marks_old_stale(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache old;
	struct mid_cache current;
	struct mid_cache_user_view u;

	sample_publish(fx->path, 1);
	assert_int_equal(mid_cache_open(fx->path, &old), 0);
	assert_false(mid_cache_is_stale(&old));

	sample_publish(fx->path, 2);
	assert_true(mid_cache_is_stale(&old));

	assert_int_equal(mid_cache_open(fx->path, &current), 0);
	assert_false(mid_cache_is_stale(&current));
	assert_int_equal(current.header->generation, 2);
	assert_true(current.ino != old.ino);

	/* The old map stays readable until its reader closes it. */
	assert_int_equal(mid_cache_find_user_by_name(&old, "alice", NOW, &u), 0);
	assert_int_equal(old.header->generation, 1);
	assert_int_equal(dir_entry_count(fx->dir), 1);

	mid_cache_close(&old);
	mid_cache_close(&current);
}

static void test_publish_over_non_cache(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache cache;
	int fd = open(fx->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a cache\n", 12), 12);
	close(fd);

	sample_publish(fx->path, 1);
	assert_int_equal(mid_cache_open(fx->path, &cache), 0);
	mid_cache_close(&cache);
}

static void test_publish_leaves_mismatched_file(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_header h = {.version = MID_CACHE_VERSION, .file_size = 1};
	struct mid_cache_header after;
	char keep[400];
	int fd;

	/* A header whose file_size does not match is not a cache the writer
	 * may mark. The hard link keeps the replaced file for inspection. */
	memcpy(h.magic, MID_CACHE_MAGIC, sizeof(h.magic));
	fd = open(fx->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
	close(fd);
	snprintf(keep, sizeof(keep), "%s/keep", fx->dir);
	assert_int_equal(link(fx->path, keep), 0);

	sample_publish(fx->path, 1);

	fd = open(keep, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, &after, sizeof(after)), (ssize_t)sizeof(after));
	close(fd);
	assert_int_equal(after.stale, 0);
}

static void test_publish_failure_removes_temp(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_builder *b = NULL;

	/* rename(2) cannot replace a directory with a file. */
	assert_int_equal(mkdir(fx->path, 0755), 0);
	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_managed(b, "alice"), 0);
	assert_true(mid_cache_builder_publish(b, fx->path, 1, NOW) < 0);
	assert_int_equal(dir_entry_count(fx->dir), 1);
	mid_cache_builder_free(b);
}

static void test_publish_missing_dir(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_builder *b = NULL;
	char path[400];

	snprintf(path, sizeof(path), "%s/missing/nss.cache", fx->dir);
	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_publish(b, path, 1, NOW), -ENOENT);
	assert_int_equal(dir_entry_count(fx->dir), 0);
	mid_cache_builder_free(b);
}

/* ---- files the reader rejects at open ---- */

static void test_open_missing(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache cache = {0};

	assert_int_equal(mid_cache_open(fx->path, &cache), -ENOENT);
	assert_null(cache.map);
}

static void test_open_directory(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache cache;

	assert_int_equal(mid_cache_open(fx->dir, &cache), -EBADMSG);
}

static void test_open_fifo(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache cache;

	assert_int_equal(mkfifo(fx->path, 0644), 0);
	assert_int_equal(mid_cache_open(fx->path, &cache), -EBADMSG);
}

typedef void (*mutation)(uint8_t *data, size_t *size);

/* Publishes the sample, applies mutate to the file's bytes and returns
 * what mid_cache_open makes of the result. */
static int mutated_open(struct fixture *fx, mutation mutate)
{
	struct mid_cache cache;
	struct stat st;
	uint8_t *data;
	size_t size;
	int fd;
	int r;

	sample_publish(fx->path, 1);
	fd = open(fx->path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	size = (size_t)st.st_size;
	/* malloc aligns for any type, so the header can be edited in place. */
	data = malloc(size + 64);
	assert_non_null(data);
	assert_int_equal(pread(fd, data, size, 0), (ssize_t)size);

	mutate(data, &size);

	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, data, size, 0), (ssize_t)size);
	close(fd);
	free(data);

	r = mid_cache_open(fx->path, &cache);
	if (r == 0)
		mid_cache_close(&cache);
	return r;
}

static struct mid_cache_header *header_of(uint8_t *data)
{
	return (struct mid_cache_header *)(void *)data;
}

static void mutate_nothing(uint8_t *data, size_t *size)
{
}

static void mutate_truncate_half(uint8_t *data, size_t *size)
{
	*size /= 2;
}

static void mutate_truncate_inside_header(uint8_t *data, size_t *size)
{
	*size = sizeof(struct mid_cache_header) - 1;
}

static void mutate_empty(uint8_t *data, size_t *size)
{
	*size = 0;
}

static void mutate_append(uint8_t *data, size_t *size)
{
	memset(data + *size, 0, 8);
	*size += 8;
}

static void mutate_magic(uint8_t *data, size_t *size)
{
	header_of(data)->magic[0] ^= 1;
}

static void mutate_version(uint8_t *data, size_t *size)
{
	header_of(data)->version = MID_CACHE_VERSION + 1;
}

static void mutate_header_size_small(uint8_t *data, size_t *size)
{
	header_of(data)->header_size = 8;
}

static void mutate_header_size_large(uint8_t *data, size_t *size)
{
	header_of(data)->header_size = (uint32_t)*size + 1;
}

static void mutate_file_size(uint8_t *data, size_t *size)
{
	header_of(data)->file_size += 8;
}

static void mutate_users_off_past_end(uint8_t *data, size_t *size)
{
	header_of(data)->users_off = (*size + 15) & ~(size_t)7;
}

static void mutate_users_off_overflow(uint8_t *data, size_t *size)
{
	/* Still a multiple of 8, but off + size wraps around. */
	header_of(data)->users_off = UINT64_MAX - 7;
}

static void mutate_users_off_in_header(uint8_t *data, size_t *size)
{
	header_of(data)->users_off = 0;
}

static void mutate_groups_off_misaligned(uint8_t *data, size_t *size)
{
	header_of(data)->groups_off += 4;
}

static void mutate_users_past_end(uint8_t *data, size_t *size)
{
	/* The offset is inside the file, but three records do not fit. */
	header_of(data)->users_off = (*size - 16) & ~(size_t)7;
}

static void mutate_index_past_end(uint8_t *data, size_t *size)
{
	header_of(data)->managed_index_off = (*size - 8) & ~(size_t)7;
}

static void mutate_strings_off_past_end(uint8_t *data, size_t *size)
{
	header_of(data)->strings_off = (*size + 15) & ~(size_t)7;
}

static void mutate_strings_size_past_end(uint8_t *data, size_t *size)
{
	header_of(data)->strings_size += 8;
}

static void mutate_strings_size_zero(uint8_t *data, size_t *size)
{
	header_of(data)->strings_size = 0;
}

static void mutate_strings_unterminated(uint8_t *data, size_t *size)
{
	data[*size - 1] = 'x';
}

static void mutate_first_string_not_empty(uint8_t *data, size_t *size)
{
	data[header_of(data)->strings_off] = 'x';
}

static void mutate_buckets_not_power_of_two(uint8_t *data, size_t *size)
{
	header_of(data)->user_buckets = 12;
}

static void mutate_buckets_zero(uint8_t *data, size_t *size)
{
	header_of(data)->n_managed = 0;
	header_of(data)->managed_buckets = 0;
}

static void mutate_buckets_too_few(uint8_t *data, size_t *size)
{
	/* A power of two, but less than twice the three groups. */
	header_of(data)->group_buckets = 4;
}

static void test_open_valid_control(void **state)
{
	/* Guards the tests below: the unmodified round trip opens. */
	assert_int_equal(mutated_open(*state, mutate_nothing), 0);
}

static void test_open_truncated(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_truncate_half), -EBADMSG);
}

static void test_open_truncated_in_header(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_truncate_inside_header), -EBADMSG);
}

static void test_open_empty_file(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_empty), -EBADMSG);
}

static void test_open_trailing_bytes(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_append), -EBADMSG);
}

static void test_open_bad_magic(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_magic), -EBADMSG);
}

static void test_open_wrong_version(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_version), -EBADMSG);
}

static void test_open_header_size_small(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_header_size_small), -EBADMSG);
}

static void test_open_header_size_large(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_header_size_large), -EBADMSG);
}

static void test_open_file_size_mismatch(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_file_size), -EBADMSG);
}

static void test_open_users_off_past_end(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_users_off_past_end), -EBADMSG);
}

static void test_open_users_off_overflow(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_users_off_overflow), -EBADMSG);
}

static void test_open_users_off_in_header(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_users_off_in_header), -EBADMSG);
}

static void test_open_misaligned_section(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_groups_off_misaligned), -EBADMSG);
}

static void test_open_users_past_end(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_users_past_end), -EBADMSG);
}

static void test_open_index_past_end(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_index_past_end), -EBADMSG);
}

static void test_open_strings_off_past_end(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_strings_off_past_end), -EBADMSG);
}

static void test_open_strings_size_past_end(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_strings_size_past_end), -EBADMSG);
}

static void test_open_strings_size_zero(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_strings_size_zero), -EBADMSG);
}

static void test_open_strings_unterminated(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_strings_unterminated), -EBADMSG);
}

static void test_open_first_string_not_empty(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_first_string_not_empty), -EBADMSG);
}

/* Writes a cache of n_users zeroed user records, and no other entries, as
 * a sparse file, so that a count near the limit costs no disk space. */
static int sparse_cache_open(struct fixture *fx, uint32_t n_users)
{
	struct mid_cache_header h = {
	    .version = MID_CACHE_VERSION,
	    .header_size = sizeof(h),
	    .n_users = n_users,
	    .user_buckets = 1u << 24,
	    .group_buckets = 1,
	    .managed_buckets = 1,
	    .strings_size = 1,
	};
	struct mid_cache cache;
	uint64_t off = sizeof(h);
	int fd;
	int r;

	memcpy(h.magic, MID_CACHE_MAGIC, sizeof(h.magic));
	h.users_off = off;
	off += (uint64_t)n_users * sizeof(struct mid_cache_user);
	h.groups_off = off;
	h.user_name_index_off = off;
	off += (uint64_t)h.user_buckets * sizeof(uint32_t);
	h.user_uid_index_off = off;
	off += (uint64_t)h.user_buckets * sizeof(uint32_t);
	h.group_name_index_off = off;
	off += 8;
	h.group_gid_index_off = off;
	off += 8;
	h.managed_index_off = off;
	off += 8;
	h.strings_off = off;
	h.file_size = off + h.strings_size;

	fd = open(fx->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)h.file_size), 0);
	assert_int_equal(pwrite(fd, &h, sizeof(h), 0), (ssize_t)sizeof(h));
	close(fd);

	r = mid_cache_open(fx->path, &cache);
	if (r == 0)
		mid_cache_close(&cache);
	return r;
}

static void test_open_max_users(void **state)
{
	/* Guards the next test: the hand-built layout is valid at the limit. */
	assert_int_equal(sparse_cache_open(*state, MID_CACHE_MAX_RECORDS), 0);
}

static void test_open_too_many_users(void **state)
{
	assert_int_equal(sparse_cache_open(*state, MID_CACHE_MAX_RECORDS + 1), -EBADMSG);
}

static void test_open_buckets_not_power_of_two(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_buckets_not_power_of_two), -EBADMSG);
}

static void test_open_buckets_zero(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_buckets_zero), -EBADMSG);
}

static void test_open_buckets_too_few(void **state)
{
	assert_int_equal(mutated_open(*state, mutate_buckets_too_few), -EBADMSG);
}

/* ---- records the reader rejects at access ---- */

static struct mid_cache_user *users_of(uint8_t *data)
{
	return (struct mid_cache_user *)(void *)(data + header_of(data)->users_off);
}

static uint32_t *index_of(uint8_t *data, uint64_t off)
{
	return (uint32_t *)(void *)(data + off);
}

static void mutate_all_user_names(uint8_t *data, size_t *size)
{
	for (uint32_t i = 0; i < header_of(data)->n_users; i++)
		users_of(data)[i].name = (uint32_t)header_of(data)->strings_size;
}

static void mutate_alice_shell(uint8_t *data, size_t *size)
{
	users_of(data)[0].shell = UINT32_MAX - 1;
}

static void mutate_group_names(uint8_t *data, size_t *size)
{
	struct mid_cache_header *h = header_of(data);
	struct mid_cache_group *groups = (struct mid_cache_group *)(void *)(data + h->groups_off);

	for (uint32_t i = 0; i < h->n_groups; i++)
		groups[i].name = (uint32_t)h->strings_size + 1000;
}

static void mutate_user_name_slots(uint8_t *data, size_t *size)
{
	struct mid_cache_header *h = header_of(data);
	uint32_t *index = index_of(data, h->user_name_index_off);

	for (uint32_t i = 0; i < h->user_buckets; i++)
		if (index[i] != MID_CACHE_EMPTY)
			index[i] = MID_CACHE_EMPTY - 1;
}

static void mutate_uid_index_full(uint8_t *data, size_t *size)
{
	struct mid_cache_header *h = header_of(data);
	uint32_t *index = index_of(data, h->user_uid_index_off);

	for (uint32_t i = 0; i < h->user_buckets; i++)
		index[i] = 0;
}

static void mutate_managed_slots(uint8_t *data, size_t *size)
{
	struct mid_cache_header *h = header_of(data);
	uint32_t *index = index_of(data, h->managed_index_off);

	for (uint32_t i = 0; i < h->managed_buckets; i++)
		if (index[i] != MID_CACHE_EMPTY)
			index[i] = (uint32_t)h->strings_size;
}

/* Like mutated_open, but returns the open cache for lookups. */
static void mutated_cache(struct fixture *fx, mutation mutate, struct mid_cache *cache)
{
	assert_int_equal(mutated_open(fx, mutate), 0);
	assert_int_equal(mid_cache_open(fx->path, cache), 0);
}

static void test_record_name_out_of_range(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u = {.name = "sentinel"};

	mutated_cache(*state, mutate_all_user_names, &cache);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alice", NOW, &u), -EBADMSG);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 60001, NOW, &u), -EBADMSG);
	assert_int_equal(mid_cache_user_at(&cache, 0, NOW, &u), -EBADMSG);
	assert_string_equal(u.name, "sentinel");
	mid_cache_close(&cache);
}

static void test_record_shell_out_of_range(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u;

	mutated_cache(*state, mutate_alice_shell, &cache);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alice", NOW, &u), -EBADMSG);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 60001, NOW, &u), -EBADMSG);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "bob", NOW, &u), 0);
	mid_cache_close(&cache);
}

static void test_group_name_out_of_range(void **state)
{
	struct mid_cache cache;
	struct mid_cache_group_view g;

	mutated_cache(*state, mutate_group_names, &cache);
	assert_int_equal(mid_cache_find_group_by_name(&cache, "alice", NOW, &g), -EBADMSG);
	assert_int_equal(mid_cache_find_group_by_gid(&cache, 60001, NOW, &g), -EBADMSG);
	assert_int_equal(mid_cache_group_at(&cache, 1, NOW, &g), -EBADMSG);
	mid_cache_close(&cache);
}

static void test_index_slot_out_of_range(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u;

	mutated_cache(*state, mutate_user_name_slots, &cache);
	assert_int_equal(mid_cache_find_user_by_name(&cache, "alice", NOW, &u), -EBADMSG);
	mid_cache_close(&cache);
}

static void test_index_without_empty_slot(void **state)
{
	struct mid_cache cache;
	struct mid_cache_user_view u;

	/* Every slot names alice, so a miss must stop after one round. */
	mutated_cache(*state, mutate_uid_index_full, &cache);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 60001, NOW, &u), 0);
	assert_int_equal(mid_cache_find_user_by_uid(&cache, 99999, NOW, &u), -EBADMSG);
	mid_cache_close(&cache);
}

static void test_managed_slot_out_of_range(void **state)
{
	struct mid_cache cache;

	mutated_cache(*state, mutate_managed_slots, &cache);
	assert_int_equal(mid_cache_is_managed(&cache, "alice"), -EBADMSG);
	mid_cache_close(&cache);
}

static void test_string_changed_after_open(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache cache;
	struct stat st;
	int fd;

	/* "dave", the last managed name added, ends the strings region. The
	 * map shares the file's pages, so overwriting its NUL shows at once. */
	sample_open(fx, &cache);
	assert_int_equal(mid_cache_is_managed(&cache, "dave"), 1);
	fd = open(fx->path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(pwrite(fd, "x", 1, st.st_size - 1), 1);
	close(fd);

	assert_int_equal(mid_cache_is_managed(&cache, "dave"), -EBADMSG);
	mid_cache_close(&cache);
}

#define FIXTURE_TEST(f) cmocka_unit_test_setup_teardown(f, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    FIXTURE_TEST(test_user_by_name),
	    FIXTURE_TEST(test_user_by_name_miss),
	    FIXTURE_TEST(test_user_by_uid),
	    FIXTURE_TEST(test_group_by_name_and_gid),
	    FIXTURE_TEST(test_expiry_hides_records),
	    FIXTURE_TEST(test_enumeration),
	    FIXTURE_TEST(test_managed_names),
	    FIXTURE_TEST(test_header_fields),
	    FIXTURE_TEST(test_strings_shared),
	    FIXTURE_TEST(test_empty_cache),
	    FIXTURE_TEST(test_many_records),
	    FIXTURE_TEST(test_remove_keeps_others),
	    FIXTURE_TEST(test_remove_missing),
	    FIXTURE_TEST(test_set_expiry),
	    FIXTURE_TEST(test_duplicate_rejected),
	    FIXTURE_TEST(test_rejected_input_leaves_builder),
	    FIXTURE_TEST(test_invalid_names_rejected),
	    FIXTURE_TEST(test_invalid_fields_rejected),
	    FIXTURE_TEST(test_publish_file_mode),
	    FIXTURE_TEST(test_publish_marks_old_stale),
	    FIXTURE_TEST(test_publish_over_non_cache),
	    FIXTURE_TEST(test_publish_leaves_mismatched_file),
	    FIXTURE_TEST(test_publish_failure_removes_temp),
	    FIXTURE_TEST(test_publish_missing_dir),
	    FIXTURE_TEST(test_open_missing),
	    FIXTURE_TEST(test_open_directory),
	    FIXTURE_TEST(test_open_fifo),
	    FIXTURE_TEST(test_open_valid_control),
	    FIXTURE_TEST(test_open_truncated),
	    FIXTURE_TEST(test_open_truncated_in_header),
	    FIXTURE_TEST(test_open_empty_file),
	    FIXTURE_TEST(test_open_trailing_bytes),
	    FIXTURE_TEST(test_open_bad_magic),
	    FIXTURE_TEST(test_open_wrong_version),
	    FIXTURE_TEST(test_open_header_size_small),
	    FIXTURE_TEST(test_open_header_size_large),
	    FIXTURE_TEST(test_open_file_size_mismatch),
	    FIXTURE_TEST(test_open_users_off_past_end),
	    FIXTURE_TEST(test_open_users_off_overflow),
	    FIXTURE_TEST(test_open_users_off_in_header),
	    FIXTURE_TEST(test_open_misaligned_section),
	    FIXTURE_TEST(test_open_users_past_end),
	    FIXTURE_TEST(test_open_index_past_end),
	    FIXTURE_TEST(test_open_strings_off_past_end),
	    FIXTURE_TEST(test_open_strings_size_past_end),
	    FIXTURE_TEST(test_open_strings_size_zero),
	    FIXTURE_TEST(test_open_strings_unterminated),
	    FIXTURE_TEST(test_open_first_string_not_empty),
	    FIXTURE_TEST(test_open_max_users),
	    FIXTURE_TEST(test_open_too_many_users),
	    FIXTURE_TEST(test_open_buckets_not_power_of_two),
	    FIXTURE_TEST(test_open_buckets_zero),
	    FIXTURE_TEST(test_open_buckets_too_few),
	    FIXTURE_TEST(test_record_name_out_of_range),
	    FIXTURE_TEST(test_record_shell_out_of_range),
	    FIXTURE_TEST(test_group_name_out_of_range),
	    FIXTURE_TEST(test_index_slot_out_of_range),
	    FIXTURE_TEST(test_index_without_empty_slot),
	    FIXTURE_TEST(test_managed_slot_out_of_range),
	    FIXTURE_TEST(test_string_changed_after_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
