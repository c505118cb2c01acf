/* mkcache: writes an NSS cache from command-line entries, so that shell
 * tests and manual checks of libnss_mid need no running agent. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cache.h"

static void usage(FILE *out)
{
	fputs("Usage: mkcache PATH ENTRY...\n"
	      "Writes an NSS cache file to PATH the way mid-agentd publishes it.\n"
	      "ENTRY is one of:\n"
	      "  user:NAME:UID:GID:HOME:SHELL:EXPIRES[:GECOS]\n"
	      "  group:NAME:GID:EXPIRES\n"
	      "  managed:NAME\n"
	      "EXPIRES is seconds since the Epoch, or +N or -N seconds from now.\n",
	      out);
}

/* Splits s at ':' into at most max fields, in place. Returns the count. */
static size_t fields_split(char *s, char **fields, size_t max)
{
	size_t n = 0;

	while (n < max) {
		fields[n++] = s;
		s = strchr(s, ':');
		if (!s)
			break;
		*s++ = '\0';
	}
	return s ? max + 1 : n;
}

static int number_parse(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	char *end;
	intmax_t v;

	if (*s == '\0')
		return -EINVAL;
	errno = 0;
	v = strtoimax(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int id_parse(const char *s, uint32_t *ret)
{
	int64_t v;
	int r = number_parse(s, 0, UINT32_MAX, &v);

	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

static int expiry_parse(const char *s, int64_t now, int64_t *ret)
{
	int64_t v;
	int r = number_parse(s, INT64_MIN / 2, INT64_MAX / 2, &v);

	if (r < 0)
		return r;
	*ret = (s[0] == '+' || s[0] == '-') ? now + v : v;
	return 0;
}

static int entry_add(struct mid_cache_builder *b, char *entry, int64_t now)
{
	char *f[8];
	size_t n = fields_split(entry, f, MID_ELEMENTSOF(f));
	uint32_t uid;
	uint32_t gid;
	int64_t expires_at;

	if (strcmp(f[0], "user") == 0 && (n == 7 || n == 8)) {
		if (id_parse(f[2], &uid) < 0 || id_parse(f[3], &gid) < 0 ||
		    expiry_parse(f[6], now, &expires_at) < 0)
			return -EINVAL;
		return mid_cache_builder_add_user(b, f[1], uid, gid, n == 8 ? f[7] : NULL, f[4],
						  f[5], expires_at);
	}
	if (strcmp(f[0], "group") == 0 && n == 4) {
		if (id_parse(f[2], &gid) < 0 || expiry_parse(f[3], now, &expires_at) < 0)
			return -EINVAL;
		return mid_cache_builder_add_group(b, f[1], gid, expires_at);
	}
	if (strcmp(f[0], "managed") == 0 && n == 2)
		return mid_cache_builder_add_managed(b, f[1]);
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct mid_cache_builder *b = NULL;
	int64_t now = time(NULL);
	int status = EXIT_FAILURE;
	int r;

	if (argc == 2 && strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return EXIT_SUCCESS;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}

	r = mid_cache_builder_new(&b);
	if (r < 0) {
		fprintf(stderr, "mkcache: cannot create the cache builder: %s\n", strerror(-r));
		goto finish;
	}

	for (int i = 2; i < argc; i++) {
		_cleanup_free_ char *entry = strdup(argv[i]);

		if (!entry) {
			fprintf(stderr, "mkcache: cannot copy entry '%s': %s\n", argv[i],
				strerror(ENOMEM));
			goto finish;
		}
		r = entry_add(b, entry, now);
		if (r == -EEXIST) {
			fprintf(stderr, "mkcache: duplicate name or id in entry '%s'\n", argv[i]);
			goto finish;
		}
		if (r == -EINVAL) {
			fprintf(stderr,
				"mkcache: invalid entry '%s', expected a form that "
				"mkcache --help lists\n",
				argv[i]);
			goto finish;
		}
		if (r < 0) {
			fprintf(stderr, "mkcache: cannot add entry '%s': %s\n", argv[i],
				strerror(-r));
			goto finish;
		}
	}

	r = mid_cache_builder_publish(b, argv[1], (uint64_t)now, now);
	if (r < 0) {
		fprintf(stderr, "mkcache: cannot publish %s: %s\n", argv[1], strerror(-r));
		goto finish;
	}
	status = EXIT_SUCCESS;

finish:
	mid_cache_builder_free(b);
	return status;
}
