/* Times whole PAM transactions: pam_start, pam_authenticate,
 * pam_acct_mgmt, pam_end, answering the prompt with SECRET. Prints the
 * median microseconds per transaction over BENCH_ROUNDS rounds.
 * Usage: bench_pam SERVICE USER SECRET */
#include <security/pam_appl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_nsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			r[i].resp = strdup(data);
	*resp = r;
	return PAM_SUCCESS;
}

static int transaction(const char *service, const char *user, char *secret)
{
	struct pam_conv c = {.conv = conv, .appdata_ptr = secret};
	pam_handle_t *pamh = NULL;
	int r;

	r = pam_start(service, user, &c, &pamh);
	if (r == PAM_SUCCESS)
		r = pam_authenticate(pamh, 0);
	if (r == PAM_SUCCESS)
		r = pam_acct_mgmt(pamh, 0);
	pam_end(pamh, r);
	return r;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int rounds = getenv("BENCH_ROUNDS") ? atoi(getenv("BENCH_ROUNDS")) : 7;
	int64_t round_nsec = (getenv("BENCH_ROUND_MS") ? atoll(getenv("BENCH_ROUND_MS")) : 300) *
			     1000000LL;
	double per[64];

	if (argc != 4 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "usage: bench_pam SERVICE USER SECRET\n");
		return 2;
	}
	if (transaction(argv[1], argv[2], argv[3]) != PAM_SUCCESS) {
		fprintf(stderr, "bench_pam: %s: the first transaction failed\n", argv[1]);
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		int64_t start = now_nsec(), end, n = 0;

		do {
			if (transaction(argv[1], argv[2], argv[3]) != PAM_SUCCESS) {
				fprintf(stderr, "bench_pam: %s: a transaction failed\n", argv[1]);
				return 1;
			}
			n++;
			end = now_nsec();
		} while (end - start < round_nsec);
		per[i] = (double)(end - start) / (double)n / 1000.0;
	}
	qsort(per, (size_t)rounds, sizeof(double), compare);
	printf("%.1f\n", per[rounds / 2]);
	return 0;
}
