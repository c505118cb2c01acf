/* Crash test: clients issue, verify and revoke credentials while the test
 * kills mid-agentd with SIGKILL at random moments, CRASH_KILLS times. After
 * each restart it checks that every acknowledged change survived, that no
 * unacknowledged change exists in part, that the NSS cache matches the
 * database and that the audit chain verifies. Set MID_CRASH_SEED to replay
 * a run; the seed is printed. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"
#include "client.h"
#include "harness.h"

#define CRASH_KILLS 200
#define CLIENTS 2
#define CLIENT_MAX_OPS 400
#define KILL_DELAY_MAX_US 25000
#define SAMPLE_PER_CYCLE 12
#define MAX_LEASES 20000

/* No lockout: verifying revoked credentials is part of the load. */
static const char config[] =
	"lockout = { failures = 0; };\n"
	"accounts = ( { name = \"daemon\"; ttl = \"1h\"; max_ttl = \"2h\"; } );\n"
	"classes = ( { name = \"ct\"; prefix = \"ct-\"; uid_min = 300000; uid_max = 309999;\n"
	"              group = \"mid-ct\"; gid = 300000; ttl = \"1h\"; } );\n";

struct known_lease {
	char lease[MID_LEASE_ID_MAX + 1];
	char account[MID_NAME_MAX + 1];
	char credential[MID_CREDENTIAL_MAX + 1];
	bool revoke_sent;  /* a revoke was sent; it may have committed */
	bool revoke_acked; /* a revoke was acknowledged */
};

/* A broken invariant: how often, and the first occurrence. */
struct violation {
	unsigned count;
	char first[256];
};

static struct {
	struct known_lease *leases;
	size_t n_leases;
	unsigned unacked_issues; /* issues sent without a reply */
	unsigned kills;
	unsigned cycles_checked;
	unsigned verified;
	struct violation lost_lease;      /* an acknowledged issue is gone */
	struct violation wrong_state;     /* a lease's state contradicts the acks */
	struct violation credential;      /* a credential verifies against the acks */
	struct violation lease_no_audit;  /* a lease without its issue record */
	struct violation audit_no_lease;  /* an issue record without its lease */
	struct violation revoke_no_audit; /* a revoked lease without its revoke record */
	struct violation extra_leases;    /* more unacknowledged leases than were sent */
	struct violation cache;           /* the NSS cache differs from the database */
	struct violation chain;           /* the audit chain does not verify */
	struct violation restart;         /* the agent did not come back */
	struct violation client;          /* a client saw a wrong reply while running */
} run;

static struct harness h;

MID_PRINTF(2, 3)
static void violate(struct violation *v, const char *fmt, ...)
{
	va_list ap;

	if (v->count++ > 0)
		return;
	va_start(ap, fmt);
	vsnprintf(v->first, sizeof(v->first), fmt, ap);
	va_end(ap);
}

static int call(const struct mid_request *req, struct mid_response *resp)
{
	int r = mid_client_call(h.socket_path, 3000, req, resp);

	return r < 0 ? r : resp->status;
}

/* ---- clients ---- */

struct own_lease {
	char lease[MID_LEASE_ID_MAX + 1];
	char account[MID_NAME_MAX + 1];
	char credential[MID_CREDENTIAL_MAX + 1];
	bool revoked;
};

/* Runs requests until the agent dies. It writes "S op" before a request
 * whose effect may commit and "A ..." once it is acknowledged, so the test
 * can tell which changes were in flight. */
static void client_run(FILE *out, unsigned seed)
{
	struct own_lease *own = calloc(CLIENT_MAX_OPS, sizeof(*own));
	struct mid_response *resp = calloc(1, sizeof(*resp));
	size_t n = 0;

	if (!own || !resp)
		_exit(2);
	srand(seed);
	for (int op = 0; op < CLIENT_MAX_OPS; op++) {
		struct mid_request req = {0};
		int choice = rand() % 100, r;

		if (choice < 50 || n == 0) {
			bool class = choice < 15;

			req.type = MID_REQ_ISSUE;
			strcpy(class ? req.class_name : req.account, class ? "ct" : "daemon");
			fprintf(out, "S issue\n");
			fflush(out);
			r = call(&req, resp);
			if (r < 0)
				break;
			if (r != MID_OK) {
				fprintf(out, "E issue status %d: %s\n", r, resp->message);
				continue;
			}
			snprintf(own[n].lease, sizeof(own[n].lease), "%s", resp->lease.lease);
			snprintf(own[n].account, sizeof(own[n].account), "%s", resp->lease.account);
			snprintf(own[n].credential, sizeof(own[n].credential), "%s",
				 resp->credential);
			fprintf(out, "A issue %s %s %s\n", own[n].lease, own[n].account,
				own[n].credential);
			n++;
		} else if (choice < 80) {
			struct own_lease *l = &own[(size_t)rand() % n];
			int expected = l->revoked ? MID_ERR_REVOKED : MID_OK;

			req.type = MID_REQ_VERIFY;
			strcpy(req.account, l->account);
			strcpy(req.credential, l->credential);
			strcpy(req.service, "sshd");
			r = call(&req, resp);
			if (r < 0)
				break;
			if (r != expected)
				fprintf(out, "E verify %s status %d, expected %d: %s\n", l->lease, r,
					expected, resp->message);
		} else {
			struct own_lease *l = &own[(size_t)rand() % n];

			if (l->revoked)
				continue;
			req.type = MID_REQ_REVOKE;
			strcpy(req.lease, l->lease);
			fprintf(out, "S revoke %s\n", l->lease);
			fflush(out);
			r = call(&req, resp);
			if (r < 0)
				break;
			if (r != MID_OK) {
				fprintf(out, "E revoke %s status %d: %s\n", l->lease, r,
					resp->message);
				continue;
			}
			l->revoked = true;
			fprintf(out, "A revoke %s\n", l->lease);
		}
		fflush(out);
	}
	fflush(out);
	_exit(0);
}

static struct known_lease *known_find(const char *lease)
{
	for (size_t i = run.n_leases; i-- > 0;)
		if (strcmp(run.leases[i].lease, lease) == 0)
			return &run.leases[i];
	return NULL;
}

/* Merges one client's record of a burst into the run's state. */
static void client_merge(const char *path)
{
	char line[512], lease[MID_LEASE_ID_MAX + 1], account[MID_NAME_MAX + 1],
		credential[MID_CREDENTIAL_MAX + 1];
	unsigned pending_issue = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		violate(&run.client, "client output %s is missing", path);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		struct known_lease *k;

		if (strcmp(line, "S issue\n") == 0)
			pending_issue = 1;
		else if (sscanf(line, "A issue %32s %32s %128s", lease, account, credential) == 3) {
			pending_issue = 0;
			if (run.n_leases == MAX_LEASES)
				continue;
			k = &run.leases[run.n_leases++];
			memset(k, 0, sizeof(*k));
			strcpy(k->lease, lease);
			strcpy(k->account, account);
			strcpy(k->credential, credential);
		} else if (sscanf(line, "S revoke %32s", lease) == 1) {
			k = known_find(lease);
			if (k)
				k->revoke_sent = true;
		} else if (sscanf(line, "A revoke %32s", lease) == 1) {
			k = known_find(lease);
			if (k)
				k->revoke_acked = true;
		} else if (line[0] == 'E') {
			if (strncmp(line, "E issue", 7) == 0)
				pending_issue = 0;
			line[strcspn(line, "\n")] = '\0';
			violate(&run.client, "%s", line);
		}
	}
	fclose(f);
	run.unacked_issues += pending_issue;
}

/* ---- checks after a restart ---- */

static long long db_count(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void check_database(void)
{
	char path[400];
	sqlite3 *db;
	sqlite3_stmt *st;
	long long n, total;

	snprintf(path, sizeof(path), "%s/state/state.db", h.dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		violate(&run.lost_lease, "cannot open %s: %s", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return;
	}
	sqlite3_busy_timeout(db, 2000);

	n = db_count(db, "SELECT count(*) FROM leases l WHERE NOT EXISTS (SELECT 1 FROM audit a "
			 "WHERE a.event = 'issue' AND a.lease = l.id)");
	if (n != 0)
		violate(&run.lease_no_audit, "%lld leases have no issue record (kill %u)", n,
			run.kills);
	n = db_count(db, "SELECT count(*) FROM audit a WHERE a.event = 'issue' AND NOT EXISTS "
			 "(SELECT 1 FROM leases l WHERE l.id = a.lease)");
	if (n != 0)
		violate(&run.audit_no_lease, "%lld issue records have no lease (kill %u)", n,
			run.kills);
	n = db_count(db, "SELECT count(*) FROM leases l WHERE l.state = 1 AND NOT EXISTS (SELECT "
			 "1 FROM audit a WHERE a.event = 'revoke' AND a.lease = l.id)");
	if (n != 0)
		violate(&run.revoke_no_audit, "%lld revoked leases have no revoke record (kill %u)",
			n, run.kills);

	total = db_count(db, "SELECT count(*) FROM leases");
	if (total < 0 || (size_t)total > run.n_leases + run.unacked_issues)
		violate(&run.extra_leases,
			"%lld leases, but only %zu issues were acknowledged and %u were in flight "
			"(kill %u)",
			total, run.n_leases, run.unacked_issues, run.kills);

	if (sqlite3_prepare_v2(db, "SELECT state FROM leases WHERE id = ?", -1, &st, NULL) ==
	    SQLITE_OK) {
		for (size_t i = 0; i < run.n_leases; i++) {
			const struct known_lease *k = &run.leases[i];
			int state;

			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, k->lease, -1, SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_ROW) {
				violate(&run.lost_lease, "acknowledged lease %s is missing (kill %u)",
					k->lease, run.kills);
				continue;
			}
			state = sqlite3_column_int(st, 0);
			if ((k->revoke_acked && state != MID_LEASE_REVOKED) ||
			    (!k->revoke_sent && state != MID_LEASE_LIVE))
				violate(&run.wrong_state,
					"lease %s has state %d; revoke sent %d, acknowledged %d "
					"(kill %u)",
					k->lease, state, k->revoke_sent, k->revoke_acked, run.kills);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

/* The cache's users must be exactly the database's live class leases. */
static void check_cache(void)
{
	struct mid_cache cache;
	char path[400];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t now = (int64_t)time(NULL);
	long long live = 0, found = 0;
	uint32_t users = 0;

	if (mid_cache_open(h.cache_path, &cache) < 0) {
		violate(&run.cache, "cannot open the NSS cache %s (kill %u)", h.cache_path,
			run.kills);
		return;
	}
	for (uint32_t i = 0;; i++) {
		struct mid_cache_user_view u;
		int r = mid_cache_user_at(&cache, i, now, &u);

		if (r == -ERANGE)
			break;
		users += r == 0;
	}

	snprintf(path, sizeof(path), "%s/state/state.db", h.dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT account, uid FROM leases WHERE state = 0 AND class != '' "
				   "AND expires_at > ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, now);
		while (sqlite3_step(st) == SQLITE_ROW) {
			struct mid_cache_user_view u;
			const char *name = (const char *)sqlite3_column_text(st, 0);

			live++;
			if (mid_cache_find_user_by_name(&cache, name, now, &u) == 0 &&
			    u.uid == (uid_t)sqlite3_column_int64(st, 1))
				found++;
			else
				violate(&run.cache, "live account %s is missing from the NSS cache "
						    "(kill %u)",
					name, run.kills);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	if (users != live)
		violate(&run.cache, "the NSS cache has %u users, the database %lld live class "
				    "leases (kill %u)",
			users, live, run.kills);
	mid_cache_close(&cache);
}

static void check_credential(const struct known_lease *k, struct mid_response *resp)
{
	struct mid_request req = {.type = MID_REQ_VERIFY};
	int r;

	strcpy(req.account, k->account);
	strcpy(req.credential, k->credential);
	strcpy(req.service, "sshd");
	r = call(&req, resp);
	run.verified++;
	if (k->revoke_acked ? r == MID_ERR_REVOKED
	    : k->revoke_sent ? (r == MID_OK || r == MID_ERR_REVOKED)
			     : r == MID_OK)
		return;
	violate(&run.credential, "credential of lease %s: status %d; revoke sent %d, "
				 "acknowledged %d (kill %u)",
		k->lease, r, k->revoke_sent, k->revoke_acked, run.kills);
}

static void check_credentials(size_t from, bool all)
{
	struct mid_response *resp = calloc(1, sizeof(*resp));

	if (!resp)
		return;
	for (size_t i = from; i < run.n_leases; i++)
		check_credential(&run.leases[i], resp);
	for (int i = 0; !all && from > 0 && i < SAMPLE_PER_CYCLE; i++)
		check_credential(&run.leases[(size_t)rand() % from], resp);
	for (size_t i = 0; all && i < from; i++)
		check_credential(&run.leases[i], resp);
	free(resp);
}

static void check_chain(void)
{
	struct mid_request req = {.type = MID_REQ_AUDIT_VERIFY};
	struct mid_response *resp = calloc(1, sizeof(*resp));
	int r;

	if (!resp)
		return;
	r = call(&req, resp);
	if (r != MID_OK || strcmp(resp->message, "intact") != 0)
		violate(&run.chain, "audit verification: status %d, %s (kill %u)", r,
			resp->detail, run.kills);
	free(resp);
}

/* ---- the run ---- */

static void burst(unsigned cycle)
{
	pid_t clients[CLIENTS], agent = h.pid;
	char path[CLIENTS][400];
	int status;

	for (int i = 0; i < CLIENTS; i++) {
		snprintf(path[i], sizeof(path[i]), "%s/client%d.out", h.dir, i);
		clients[i] = fork();
		if (clients[i] == 0) {
			FILE *out = fopen(path[i], "w");

			if (!out)
				_exit(2);
			client_run(out, (unsigned)rand() + cycle * CLIENTS + (unsigned)i);
		}
	}

	usleep((useconds_t)(rand() % KILL_DELAY_MAX_US));
	kill(agent, SIGKILL);
	waitpid(agent, &status, 0);
	h.pid = 0;
	run.kills++;

	for (int i = 0; i < CLIENTS; i++) {
		if (clients[i] > 0)
			waitpid(clients[i], &status, 0);
		client_merge(path[i]);
	}
}

static int crash_run(void **state)
{
	const char *seed_text = getenv("MID_CRASH_SEED");
	unsigned seed = seed_text ? (unsigned)strtoul(seed_text, NULL, 10) : (unsigned)time(NULL);
	time_t started = time(NULL);

	printf("# crash test seed %u (replay with MID_CRASH_SEED=%u)\n", seed, seed);
	srand(seed);
	run.leases = calloc(MAX_LEASES, sizeof(*run.leases));
	if (!run.leases || harness_start(&h, NULL, config) < 0)
		return -1;

	for (unsigned cycle = 0; cycle < CRASH_KILLS; cycle++) {
		size_t before = run.n_leases;

		burst(cycle);
		if (harness_restart_agent(&h) < 0) {
			violate(&run.restart, "the agent did not restart after kill %u; see %s/agent.log",
				run.kills, h.dir);
			break;
		}
		check_database();
		check_cache();
		check_credentials(before, false);
		check_chain();
		run.cycles_checked++;
	}
	if (run.restart.count == 0)
		check_credentials(0, true);
	printf("# %u kills, %zu acknowledged issues, %u in flight, %u verifications, %ld s\n",
	       run.kills, run.n_leases, run.unacked_issues, run.verified,
	       (long)(time(NULL) - started));
	return 0;
}

static int crash_cleanup(void **state)
{
	bool failed = false;
	const struct violation *all[] = {
		&run.lost_lease, &run.wrong_state, &run.credential, &run.lease_no_audit,
		&run.audit_no_lease, &run.revoke_no_audit, &run.extra_leases, &run.cache,
		&run.chain, &run.restart, &run.client,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		failed |= all[i]->count > 0;
	/* A failed run keeps its directory and agent log for a look. */
	if (failed)
		setenv("MID_KEEP_TEST_DIR", "1", 1);
	harness_stop(&h);
	free(run.leases);
	return 0;
}

static void expect_none(const struct violation *v)
{
	if (v->count > 0)
		fail_msg("%u times; first: %s", v->count, v->first);
}

static void agent_restarts_every_time(void **state)
{
	expect_none(&run.restart);
	assert_int_equal(run.cycles_checked, CRASH_KILLS);
}

static void kills_reach_target(void **state)
{
	assert_true(run.kills >= CRASH_KILLS);
}

static void acknowledged_issues_survive(void **state)
{
	assert_true(run.n_leases > 0);
	expect_none(&run.lost_lease);
}

static void lease_states_match_acks(void **state)
{
	expect_none(&run.wrong_state);
}

static void credentials_verify_as_acked(void **state)
{
	assert_true(run.verified > 0);
	expect_none(&run.credential);
}

static void no_lease_without_record(void **state)
{
	expect_none(&run.lease_no_audit);
}

static void no_record_without_lease(void **state)
{
	expect_none(&run.audit_no_lease);
}

static void no_revoke_without_record(void **state)
{
	expect_none(&run.revoke_no_audit);
}

static void unacked_leases_bounded(void **state)
{
	expect_none(&run.extra_leases);
}

static void cache_matches_database(void **state)
{
	expect_none(&run.cache);
}

static void audit_chain_verifies(void **state)
{
	expect_none(&run.chain);
}

static void clients_see_right_replies(void **state)
{
	expect_none(&run.client);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(agent_restarts_every_time),
		cmocka_unit_test(kills_reach_target),
		cmocka_unit_test(acknowledged_issues_survive),
		cmocka_unit_test(lease_states_match_acks),
		cmocka_unit_test(credentials_verify_as_acked),
		cmocka_unit_test(no_lease_without_record),
		cmocka_unit_test(no_record_without_lease),
		cmocka_unit_test(no_revoke_without_record),
		cmocka_unit_test(unacked_leases_bounded),
		cmocka_unit_test(cache_matches_database),
		cmocka_unit_test(audit_chain_verifies),
		cmocka_unit_test(clients_see_right_replies),
	};

	return cmocka_run_group_tests_name("crash", tests, crash_run, crash_cleanup);
}
