/* The agent keeps the cache's content between publishes and applies each
 * issue, renewal, revocation and expiry to it. These tests drive a real
 * agent through such changes and compare the cache it published with the
 * one a reload rebuilds from the database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "harness.h"

static const char config[] =
	"lockout = { failures = 0; };\n"
	"classes = (\n"
	"  { name = \"pa\"; prefix = \"pa-\"; uid_min = 310000; uid_max = 310999;\n"
	"    group = \"mid-pa\"; gid = 310000; home = \"/nonexistent\"; create_home = false;\n"
	"    ttl = \"1h\"; max_ttl = \"1d\"; },\n"
	"  { name = \"pb\"; prefix = \"pb-\"; uid_min = 311000; uid_max = 311999;\n"
	"    group = \"mid-pb\"; gid = 311000; home = \"/nonexistent\"; create_home = false;\n"
	"    ttl = \"1h\"; max_ttl = \"1d\"; } );\n";

static int line_compare(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every user and group the cache at path shows at now, one sorted line
 * each, with every field. */
static char *snapshot(const char *path, int64_t now, unsigned *ret_users, unsigned *ret_groups)
{
	struct mid_cache cache;
	char *lines[256], *out;
	size_t n = 0, size = 1;

	assert_int_equal(mid_cache_open(path, &cache), 0);
	*ret_users = *ret_groups = 0;
	for (uint32_t i = 0; n < 256; i++) {
		struct mid_cache_user_view u;
		int r = mid_cache_user_at(&cache, i, now, &u);

		if (r == -ERANGE)
			break;
		if (r < 0)
			continue;
		assert_true(asprintf(&lines[n++], "user %s %u %u %s %s %s %lld\n", u.name, u.uid,
				     u.gid, u.dir, u.shell, u.gecos, (long long)u.expires_at) > 0);
		++*ret_users;
	}
	for (uint32_t i = 0; n < 256; i++) {
		struct mid_cache_group_view g;
		int r = mid_cache_group_at(&cache, i, now, &g);

		if (r == -ERANGE)
			break;
		if (r < 0)
			continue;
		assert_true(asprintf(&lines[n++], "group %s %u %lld\n", g.name, g.gid,
				     (long long)g.expires_at) > 0);
		++*ret_groups;
	}
	mid_cache_close(&cache);

	qsort(lines, n, sizeof(*lines), line_compare);
	for (size_t i = 0; i < n; i++)
		size += strlen(lines[i]);
	out = calloc(1, size);
	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		strcat(out, lines[i]);
		free(lines[i]);
	}
	return out;
}

static int call(struct harness *h, uint8_t type, const char *lease, uint32_t ttl)
{
	struct mid_request req = {.type = type, .ttl = ttl};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int r;

	assert_non_null(resp);
	if (lease)
		snprintf(req.lease, sizeof(req.lease), "%s", lease);
	r = harness_call(h, &req, resp);
	free(resp);
	return r;
}

/* Compares the cache the agent updated with a rebuild at the same instant. */
static void assert_same_as_rebuild(struct harness *h, unsigned users, unsigned groups)
{
	int64_t now = (int64_t)time(NULL);
	unsigned u1, g1, u2, g2;
	char *updated = snapshot(h->cache_path, now, &u1, &g1), *rebuilt;

	assert_int_equal(call(h, MID_REQ_RELOAD, NULL, 0), MID_OK);
	rebuilt = snapshot(h->cache_path, now, &u2, &g2);
	assert_int_equal(u1, users);
	assert_int_equal(g1, groups);
	assert_string_equal(updated, rebuilt);
	free(updated);
	free(rebuilt);
}

static void changes_match_rebuild(void **state)
{
	struct harness h;
	struct mid_lease_info pa[12], pb[4], brief;

	assert_int_equal(harness_start(&h, NULL, config), 0);
	for (int i = 0; i < 12; i++)
		assert_int_equal(harness_issue(&h, NULL, "pa", 0, NULL, &pa[i]), MID_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(harness_issue(&h, NULL, "pb", 600 + 60 * (uint32_t)i, NULL, &pb[i]),
				 MID_OK);
	assert_same_as_rebuild(&h, 16, 2);

	/* Revocations, among them pb's member that ends last, so its group
	 * follows the one that ends next. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(call(&h, MID_REQ_REVOKE, pa[2 * i].lease, 0), MID_OK);
	assert_int_equal(call(&h, MID_REQ_REVOKE, pb[3].lease, 0), MID_OK);
	assert_same_as_rebuild(&h, 10, 2);

	for (int i = 0; i < 3; i++)
		assert_int_equal(call(&h, MID_REQ_RENEW, pa[2 * i + 1].lease, 7200), MID_OK);
	assert_same_as_rebuild(&h, 10, 2);

	/* The last members of pb go: its group leaves the cache. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(call(&h, MID_REQ_REVOKE, pb[i].lease, 0), MID_OK);
	assert_same_as_rebuild(&h, 7, 1);

	/* An expiry: the agent's timer removes the account. */
	assert_int_equal(harness_issue(&h, NULL, "pa", 3, NULL, &brief), MID_OK);
	assert_same_as_rebuild(&h, 8, 1);
	sleep(4);
	assert_same_as_rebuild(&h, 7, 1);

	harness_stop(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(changes_match_rebuild),
	};

	return cmocka_run_group_tests_name("cache publish", tests, NULL, NULL);
}
