/* Full-disk test: mid-agentd's state directory on a 2 MiB tmpfs, in a
 * private mount namespace, filled up. State changes must fail with
 * MID_ERR_NO_SPACE, existing credentials must keep verifying except those
 * whose uses are counted, and all must work again once space is freed.
 * Needs root; skips otherwise. */
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static const char config[] = "lockout = { failures = 0; };\n"
			     "accounts = (\n"
			     "  { name = \"daemon\"; ttl = \"1h\"; max_ttl = \"2h\"; },\n"
			     "  { name = \"bin\"; ttl = \"1h\"; max_uses = 1; }\n"
			     ");\n";

static struct harness h;
static char dir[64];
static char filler[128];
static char daemon_credential[MID_CREDENTIAL_MAX + 1];
static char bin_credential[MID_CREDENTIAL_MAX + 1];
static struct mid_lease_info daemon_lease;
static bool mounted;

/* Writes to a file until the file system has no page left. */
static int fill_disk(void)
{
	static char block[65536];
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	memset(block, 0x5a, sizeof(block));
	for (size_t size = sizeof(block); size >= 1; size /= 2)
		while (write(fd, block, size) == (ssize_t)size)
			;
	close(fd);
	return errno == ENOSPC ? 0 : -errno;
}

static int setup(void **state)
{
	if (geteuid() != 0)
		return 0;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "# failed to make a private mount namespace: %m\n");
		return -1;
	}
	snprintf(dir, sizeof(dir), "/tmp/mid-full-disk.XXXXXX");
	if (!mkdtemp(dir) || mount("tmpfs", dir, "tmpfs", 0, "size=2m,mode=0700") < 0) {
		fprintf(stderr, "# failed to mount a tmpfs on %s: %m\n", dir);
		return -1;
	}
	mounted = true;
	snprintf(filler, sizeof(filler), "%s/filler", dir);
	if (harness_start(&h, dir, config) < 0)
		return -1;
	if (harness_issue(&h, "daemon", NULL, 0, daemon_credential, &daemon_lease) != MID_OK ||
	    harness_issue(&h, "bin", NULL, 0, bin_credential, NULL) != MID_OK)
		return -1;
	return fill_disk();
}

static int teardown(void **state)
{
	if (!mounted)
		return 0;
	(void)harness_stop_agent(&h);
	(void)umount(dir);
	(void)rmdir(dir);
	return 0;
}

static int verify(const char *account, const char *credential, struct mid_response *resp)
{
	struct mid_request req = {.type = MID_REQ_VERIFY};

	strcpy(req.account, account);
	strcpy(req.credential, credential);
	strcpy(req.service, "sshd");
	return harness_call(&h, &req, resp);
}

static void need_root(void)
{
	if (!mounted)
		skip();
}

static void issue_fails_out_of_space(void **state)
{
	struct mid_request req = {.type = MID_REQ_ISSUE};
	struct mid_response *resp = calloc(1, sizeof(*resp));

	need_root();
	assert_non_null(resp);
	strcpy(req.account, "daemon");
	assert_int_equal(harness_call(&h, &req, resp), MID_ERR_NO_SPACE);
	assert_non_null(strstr(resp->message, "out of space"));
	assert_int_equal(resp->credential[0], '\0');
	free(resp);
}

static void midctl_issue_exits_1(void **state)
{
	char cmd[1024], output[1024] = "";
	size_t n;
	FILE *p;
	int status;

	need_root();
	snprintf(cmd, sizeof(cmd), "%s/midctl/midctl --socket %s issue daemon 2>&1",
		 getenv("MID_BUILDDIR"), h.socket_path);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(output, 1, sizeof(output) - 1, p);
	output[n] = '\0';
	status = pclose(p);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 1);
	if (!strstr(output, "out of space"))
		fail_msg("midctl printed \"%s\"", output);
}

static void revoke_fails_out_of_space(void **state)
{
	need_root();
	assert_int_equal(harness_revoke(&h, daemon_lease.lease), MID_ERR_NO_SPACE);
}

static void verification_still_succeeds(void **state)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	need_root();
	assert_non_null(resp);
	assert_int_equal(verify("daemon", daemon_credential, resp), MID_OK);
	assert_string_equal(resp->lease.lease, daemon_lease.lease);
	free(resp);
}

static void counted_use_fails_closed(void **state)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	need_root();
	assert_non_null(resp);
	assert_int_equal(verify("bin", bin_credential, resp), MID_ERR_NO_SPACE);
	free(resp);
}

static void reads_still_work(void **state)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	need_root();
	assert_non_null(resp);
	assert_int_equal(harness_call(&h, &(struct mid_request){.type = MID_REQ_STATUS}, resp),
			 MID_OK);
	assert_int_equal(resp->agent.live_leases, 2);
	assert_int_equal(harness_call(&h, &(struct mid_request){.type = MID_REQ_LIST}, resp),
			 MID_OK);
	assert_int_equal(resp->total, 2);
	free(resp);
}

static void freed_space_restores_writes(void **state)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	need_root();
	assert_non_null(resp);
	assert_int_equal(unlink(filler), 0);
	assert_int_equal(harness_issue(&h, "daemon", NULL, 0, NULL, NULL), MID_OK);
	/* The refused use was not counted, so the one use is still there. */
	assert_int_equal(verify("bin", bin_credential, resp), MID_OK);
	assert_int_equal(verify("bin", bin_credential, resp), MID_ERR_EXHAUSTED);
	assert_int_equal(harness_revoke(&h, daemon_lease.lease), MID_OK);
	assert_int_equal(verify("daemon", daemon_credential, resp), MID_ERR_REVOKED);
	free(resp);
}

static void audit_chain_intact_after(void **state)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	need_root();
	assert_non_null(resp);
	assert_int_equal(
		harness_call(&h, &(struct mid_request){.type = MID_REQ_AUDIT_VERIFY}, resp), MID_OK);
	assert_string_equal(resp->message, "intact");
	free(resp);
}

static void restart_after_full_disk(void **state)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	need_root();
	assert_non_null(resp);
	assert_int_equal(harness_stop_agent(&h), 0);
	assert_int_equal(harness_restart_agent(&h), 0);
	assert_int_equal(verify("bin", bin_credential, resp), MID_ERR_EXHAUSTED);
	free(resp);
}

int main(void)
{
	/* In order: the disk is full up to freed_space_restores_writes. */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(issue_fails_out_of_space),
		cmocka_unit_test(midctl_issue_exits_1),
		cmocka_unit_test(revoke_fails_out_of_space),
		cmocka_unit_test(verification_still_succeeds),
		cmocka_unit_test(counted_use_fails_closed),
		cmocka_unit_test(reads_still_work),
		cmocka_unit_test(freed_space_restores_writes),
		cmocka_unit_test(audit_chain_intact_after),
		cmocka_unit_test(restart_after_full_disk),
	};

	return cmocka_run_group_tests_name("full disk", tests, setup, teardown);
}
