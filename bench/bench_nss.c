/* Times NSS lookups: through glibc (getpwnam_r, getpwuid_r) with whatever
 * nsswitch.conf is in force, or by calling libnss_mid's entry points
 * directly (dlopen). Prints the median cost of one call in nanoseconds.
 *
 * Usage: bench_nss glibc|direct name|uid|miss N_ACCOUNTS THREADS [MODULE]
 * Lookups go to random accounts bench-0000000 .. bench-(N-1); a miss asks
 * for a name no source has. BENCH_ROUNDS rounds (default 7) of
 * BENCH_ROUND_MS milliseconds each (default 200); the median round counts. */
#include <dlfcn.h>
#include <errno.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS_MAX 31
#define NAMES 4096
#define BENCH_UID_BASE 200000

typedef enum nss_status (*getpwnam_fn)(const char *, struct passwd *, char *, size_t, int *);
typedef enum nss_status (*getpwuid_fn)(uid_t, struct passwd *, char *, size_t, int *);

static int rounds = 7;
static int64_t round_nsec = 200000000LL;
static int direct;
static int by_uid, miss;
static long n_accounts;
static getpwnam_fn module_getpwnam;
static getpwuid_fn module_getpwuid;
static char names[NAMES][32];
static uid_t uids[NAMES];

static int64_t now_nsec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One lookup; returns 1 when the result is as expected. */
static int lookup(unsigned i)
{
	struct passwd pw, *found = NULL;
	char buf[1024];
	int err = 0;

	if (direct) {
		enum nss_status s = by_uid ? module_getpwuid(uids[i], &pw, buf, sizeof(buf), &err)
					   : module_getpwnam(names[i], &pw, buf, sizeof(buf), &err);
		return miss ? s == NSS_STATUS_NOTFOUND : s == NSS_STATUS_SUCCESS;
	}
	if (by_uid)
		getpwuid_r(uids[i], &pw, buf, sizeof(buf), &found);
	else
		getpwnam_r(names[i], &pw, buf, sizeof(buf), &found);
	return miss ? found == NULL : found != NULL;
}

struct round {
	int64_t ops;
	int64_t nsec;
	int64_t wrong;
};

static void *run_round(void *arg)
{
	struct round *r = arg;
	unsigned i = (unsigned)(uintptr_t)r ^ 0x9e3779b9u;
	int64_t start = now_nsec(), end;

	do {
		for (int k = 0; k < 64; k++) {
			i = i * 1103515245u + 12345u;
			r->wrong += !lookup((i >> 8) % NAMES);
			r->ops++;
		}
		end = now_nsec();
	} while (end - start < round_nsec);
	r->nsec = end - start;
	return NULL;
}

static int compare(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	double per_call[ROUNDS_MAX];
	int threads;
	int64_t wrong = 0;

	if (argc < 5) {
		fprintf(stderr, "usage: bench_nss glibc|direct name|uid|miss N THREADS [MODULE]\n");
		return 2;
	}
	direct = strcmp(argv[1], "direct") == 0;
	by_uid = strcmp(argv[2], "uid") == 0;
	miss = strcmp(argv[2], "miss") == 0;
	n_accounts = strtol(argv[3], NULL, 10);
	threads = atoi(argv[4]);
	if (threads < 1 || threads > 64 || n_accounts < 1)
		return 2;
	if (getenv("BENCH_ROUNDS"))
		rounds = atoi(getenv("BENCH_ROUNDS"));
	if (getenv("BENCH_ROUND_MS"))
		round_nsec = atoll(getenv("BENCH_ROUND_MS")) * 1000000LL;
	if (rounds < 1 || rounds > ROUNDS_MAX || round_nsec <= 0)
		return 2;

	if (direct) {
		void *h = dlopen(argc > 5 ? argv[5] : "libnss_mid.so.2", RTLD_NOW);

		if (!h) {
			fprintf(stderr, "bench_nss: %s\n", dlerror());
			return 1;
		}
		module_getpwnam = (getpwnam_fn)dlsym(h, "_nss_mid_getpwnam_r");
		module_getpwuid = (getpwuid_fn)dlsym(h, "_nss_mid_getpwuid_r");
		if (!module_getpwnam || !module_getpwuid)
			return 1;
	}

	srand(42);
	for (int i = 0; i < NAMES; i++) {
		long k = rand() % n_accounts;

		if (miss) {
			snprintf(names[i], sizeof(names[i]), "nobody-here-%d", i);
			uids[i] = (uid_t)(BENCH_UID_BASE - 1 - i);
		} else {
			snprintf(names[i], sizeof(names[i]), "bench-%07ld", k);
			uids[i] = (uid_t)(BENCH_UID_BASE + k);
		}
	}
	lookup(0); /* loads the modules before timing */

	for (int round = 0; round < rounds; round++) {
		pthread_t tid[64];
		struct round r[64];
		double sum = 0;

		memset(r, 0, sizeof(r));
		for (int t = 0; t < threads; t++)
			pthread_create(&tid[t], NULL, run_round, &r[t]);
		for (int t = 0; t < threads; t++) {
			pthread_join(tid[t], NULL);
			sum += (double)r[t].nsec / (double)r[t].ops;
			wrong += r[t].wrong;
		}
		per_call[round] = sum / threads;
	}
	qsort(per_call, (size_t)rounds, sizeof(double), compare);
	printf("%.1f\n", per_call[rounds / 2]);
	if (wrong) {
		fprintf(stderr, "bench_nss: %lld lookups returned an unexpected result\n",
			(long long)wrong);
		return 1;
	}
	return 0;
}
