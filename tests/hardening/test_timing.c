/* Verification must not tell an attacker which accounts have a lease.
 * Three kinds of wrong credential must take the same time: one for an
 * account with a live lease, one for a managed name with no lease (an
 * ephemeral class name), and one naming a lease id never issued. The
 * kinds are interleaved in a shuffled order on one connection, so that
 * drift and caching affect all alike. The medians of the kinds are
 * printed, and the median difference between samples taken together must
 * stay within TIMING_TOLERANCE_PERCENT of the wrong-secret median, in the
 * median of ROUNDS rounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "hardening.h"
#include "harness.h"
#include "token.h"

#define POLICY                                                                                     \
	HARDENING_NO_LOCKOUT                                                                       \
	"accounts = ( { name = \"nobody\"; ttl = \"1h\"; } );\n"                                   \
	"classes = (\n"                                                                            \
	"  { name = \"ci\"; prefix = \"ci-\"; uid_min = 61000; uid_max = 61999;\n"                 \
	"    group = \"mid-ci\"; gid = 61000; ttl = \"5m\"; }\n"                                   \
	");\n"

#define TRIES			 1000
#define ROUNDS			 5
#define TIMING_TOLERANCE_PERCENT 5
/* Tries discarded before measuring, while the agent's caches and the page
 * cache settle. */
#define WARMUP_TRIES 50

enum kind {
	KIND_WRONG_SECRET,  /* account "nobody", its live lease, a secret never issued */
	KIND_NO_LEASE,	    /* "ci-...", a managed name with no lease at all */
	KIND_UNKNOWN_LEASE, /* account "nobody", a lease id never issued */
	_KIND_MAX,
};

static const char *const kind_names[_KIND_MAX] = {
    [KIND_WRONG_SECRET] = "wrong secret for a live lease",
    [KIND_NO_LEASE] = "class name without a lease",
    [KIND_UNKNOWN_LEASE] = "lease id never issued",
};

static struct harness agent;
static struct mid_request requests[_KIND_MAX];
static int64_t samples[_KIND_MAX][TRIES];

static void requests_prepare(void)
{
	uint8_t other_key[MID_HOST_KEY_BYTES], hash[MID_TOKEN_HASH_BYTES];
	char token[MID_TOKEN_LEN + 1], never_issued[MID_LEASE_ID_LEN + 1];
	struct mid_lease_info lease;

	assert_int_equal(harness_issue(&agent, "nobody", NULL, 0, NULL, &lease), MID_OK);
	randombytes_buf(other_key, sizeof(other_key));
	token_new_lease_id(never_issued);

	for (int k = 0; k < _KIND_MAX; k++) {
		requests[k] = (struct mid_request){.type = MID_REQ_VERIFY};
		snprintf(requests[k].service, sizeof(requests[k].service), "sshd");
		snprintf(requests[k].rhost, sizeof(requests[k].rhost), "127.0.0.1");
	}

	/* Each credential is well-formed with a valid checksum, so every
	 * request reaches the lease lookup and the hash comparison. */
	assert_int_equal(token_new(lease.lease, other_key, token, hash), 0);
	snprintf(requests[KIND_WRONG_SECRET].account, MID_NAME_MAX + 1, "nobody");
	memcpy(requests[KIND_WRONG_SECRET].credential, token, sizeof(token));

	assert_int_equal(token_new(never_issued, other_key, token, hash), 0);
	snprintf(requests[KIND_NO_LEASE].account, MID_NAME_MAX + 1, "ci-%.8s", never_issued);
	memcpy(requests[KIND_NO_LEASE].credential, token, sizeof(token));

	snprintf(requests[KIND_UNKNOWN_LEASE].account, MID_NAME_MAX + 1, "nobody");
	memcpy(requests[KIND_UNKNOWN_LEASE].credential, token, sizeof(token));
}

static int64_t verify_timed(int fd, enum kind k, struct mid_response *resp)
{
	int64_t start = monotonic_usec();
	int r = seqpacket_call(fd, &requests[k], resp, 5000);
	int64_t usec = monotonic_usec() - start;

	if (r != MID_ERR_BAD_CREDENTIAL)
		fail_msg("%s: expected bad-credential, got %s", kind_names[k],
			 r < 0 ? strerror(-r) : mid_status_to_name(r));
	return usec;
}

/* Runs TRIES verifications of each kind, interleaved in a fresh shuffle
 * every try, and prints the median of each kind. */
static void round_run(int fd, int round)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int order[_KIND_MAX] = {0, 1, 2};
	int64_t sorted[TRIES];

	assert_non_null(resp);
	for (int i = 0; i < TRIES; i++) {
		for (int k = _KIND_MAX - 1; k > 0; k--) {
			int j = (int)(random() % (k + 1)), t = order[k];

			order[k] = order[j];
			order[j] = t;
		}
		for (int k = 0; k < _KIND_MAX; k++)
			samples[order[k]][i] = verify_timed(fd, (enum kind)order[k], resp);
	}
	free(resp);

	for (int k = 0; k < _KIND_MAX; k++) {
		int64_t median;

		memcpy(sorted, samples[k], sizeof(sorted));
		median = median_usec(sorted, TRIES);
		printf(
		    "# round %d, median of %d verifications, %s: %lld us (10th %lld, 90th %lld)\n",
		    round, TRIES, kind_names[k], (long long)median, (long long)sorted[TRIES / 10],
		    (long long)sorted[TRIES * 9 / 10]);
	}
}

/* Compares kind k with the wrong-secret kind in the last round, in percent
 * of the wrong-secret median. The samples of one try were taken moments
 * apart, so the median of their differences cancels the load of the
 * moment. On a busy machine that load swings single samples by
 * milliseconds (an fsync behind other I/O) and a plain median with them. */
static double paired_percent(enum kind k)
{
	int64_t differences[TRIES], reference[TRIES], difference;

	for (int i = 0; i < TRIES; i++)
		differences[i] = samples[k][i] - samples[KIND_WRONG_SECRET][i];
	memcpy(reference, samples[KIND_WRONG_SECRET], sizeof(reference));
	difference = median_usec(differences, TRIES);
	return 100.0 * (double)llabs(difference) / (double)median_usec(reference, TRIES);
}

static int double_compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Several rounds, so that one burst of load cannot decide the result:
 * the median of the rounds' differences counts. */
static void timing_verify_failures_alike(void **state)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));
	double no_lease[ROUNDS], unknown_lease[ROUNDS];
	int fd;

	assert_non_null(resp);
	requests_prepare();
	srandom(test_seed(7));

	/* One connection: its setup cost would only add noise. The agent
	 * closes a connection idle for 5 s, which this one never is. */
	fd = seqpacket_connect(agent.socket_path);
	assert_true(fd >= 0);
	for (int i = 0; i < WARMUP_TRIES; i++)
		for (int k = 0; k < _KIND_MAX; k++)
			(void)verify_timed(fd, (enum kind)k, resp);
	free(resp);

	for (int round = 0; round < ROUNDS; round++) {
		round_run(fd, round + 1);
		no_lease[round] = paired_percent(KIND_NO_LEASE);
		unknown_lease[round] = paired_percent(KIND_UNKNOWN_LEASE);
		printf(
		    "# round %d, median paired difference from the wrong secret: no lease %.1f %%, "
		    "unknown lease %.1f %%\n",
		    round + 1, no_lease[round], unknown_lease[round]);
	}
	close(fd);

	qsort(no_lease, ROUNDS, sizeof(double), double_compare);
	qsort(unknown_lease, ROUNDS, sizeof(double), double_compare);
	printf("# median over %d rounds: no lease %.1f %% apart, unknown lease %.1f %% apart\n",
	       ROUNDS, no_lease[ROUNDS / 2], unknown_lease[ROUNDS / 2]);
	assert_true(no_lease[ROUNDS / 2] <= TIMING_TOLERANCE_PERCENT);
	assert_true(unknown_lease[ROUNDS / 2] <= TIMING_TOLERANCE_PERCENT);
}

static int group_setup(void **state)
{
	if (sodium_init() < 0)
		return -1;
	return harness_start(&agent, NULL, POLICY) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	harness_stop(&agent);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(timing_verify_failures_alike),
	};

	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_timing: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	if (geteuid() != 0) {
		printf("1..0 # SKIP needs root: the agent lets only root issue credentials here\n");
		return 0;
	}
	return cmocka_run_group_tests_name("verification timing", tests, group_setup,
					   group_teardown);
}
