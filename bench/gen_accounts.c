/* Writes N ephemeral accounts twice: as an NSS cache for libnss_mid and as
 * passwd/group files for nss_files, so both serve the same accounts.
 * Usage: gen_accounts CACHE PASSWD GROUP N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"

#define BENCH_UID_BASE 200000
#define BENCH_GID 200000

static int copy_system_file(const char *from, FILE *to)
{
	char line[4096];
	FILE *f = fopen(from, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		fputs(line, to);
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	struct mid_cache_builder *b = NULL;
	FILE *passwd, *group;
	int64_t expires = (int64_t)time(NULL) + 86400;
	long n;
	int r;

	if (argc != 5 || (n = strtol(argv[4], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: gen_accounts CACHE PASSWD GROUP N\n");
		return 2;
	}
	passwd = fopen(argv[2], "w");
	group = fopen(argv[3], "w");
	if (!passwd || !group || mid_cache_builder_new(&b) < 0) {
		perror("gen_accounts");
		return 1;
	}
	/* The system's own accounts stay first, as they would on a host. */
	if (copy_system_file("/etc/passwd", passwd) < 0 || copy_system_file("/etc/group", group) < 0) {
		perror("gen_accounts: /etc");
		return 1;
	}

	for (long i = 0; i < n; i++) {
		char name[32], home[64];

		snprintf(name, sizeof(name), "bench-%07ld", i);
		snprintf(home, sizeof(home), "/home/%s", name);
		r = mid_cache_builder_add_user(b, name, (uid_t)(BENCH_UID_BASE + i), BENCH_GID,
					       "mid benchmark", home, "/bin/sh", expires);
		if (r < 0) {
			fprintf(stderr, "gen_accounts: add %s: %s\n", name, strerror(-r));
			return 1;
		}
		fprintf(passwd, "%s:x:%ld:%d:mid benchmark:%s:/bin/sh\n", name, BENCH_UID_BASE + i,
			BENCH_GID, home);
	}
	fprintf(group, "mid-bench:x:%d:\n", BENCH_GID);
	if (mid_cache_builder_add_group(b, "mid-bench", BENCH_GID, expires) < 0)
		return 1;

	r = mid_cache_builder_publish(b, argv[1], 1, (int64_t)time(NULL));
	mid_cache_builder_free(b);
	if (r < 0) {
		fprintf(stderr, "gen_accounts: publish %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	if (fclose(passwd) != 0 || fclose(group) != 0)
		return 1;
	return 0;
}
