/* libFuzzer target for policy_load: each input is written to one temporary
 * file, loaded and freed. A load that fails must report at least one
 * error, and one that succeeds must report none. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[4096];
static int fd = -1;

static void remove_file(void)
{
	if (path[0])
		unlink(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("TMPDIR");

	if (!dir || !*dir)
		dir = "/tmp";
	if (snprintf(path, sizeof(path), "%s/fuzz_policy-XXXXXX", dir) >= (int)sizeof(path))
		abort();
	fd = mkstemp(path);
	if (fd < 0)
		abort();
	atexit(remove_file);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_errors errors = {0};
	struct policy *p = NULL;
	int r;

	/* libconfig follows @include to any path, such as /dev/zero, which
	 * would stall the fuzzer on files that are not under test. */
	if (memmem(data, size, "@include", 8))
		return 0;

	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();

	r = policy_load(path, &p, &errors);
	if (r == 0 && (!p || errors.n != 0))
		abort();
	if (r == -EINVAL && (p || errors.n == 0))
		abort();

	if (p) {
		for (size_t i = 0; i < p->n_accounts; i++)
			if (policy_find_account(p, p->accounts[i].name) != &p->accounts[i])
				abort();
		for (size_t i = 0; i < p->n_classes; i++)
			if (policy_find_class_of(p, p->classes[i].prefix) != &p->classes[i])
				abort();
	}
	policy_free(p);
	policy_errors_clear(&errors);
	return 0;
}
