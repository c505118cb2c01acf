/* libnss_mid.so.2 under hostile input and failing parts, loaded with
 * dlopen as glibc loads it. Invalid names are not found, and lookups are
 * served from the cache while the agent is stopped or hung. A missing,
 * truncated, replaced or corrupt cache gives NSS_STATUS_UNAVAIL,
 * NSS_STATUS_NOTFOUND or the correct entry, never a crash or a wrong one.
 * Lookups against a damaged cache run in a forked child, so that a crash
 * shows as a signal instead of ending the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <grp.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "hardening.h"
#include "harness.h"

#define POLICY                                                                                     \
	HARDENING_NO_LOCKOUT                                                                       \
	"classes = (\n"                                                                            \
	"  { name = \"ci\"; prefix = \"ci-\"; uid_min = 61000; uid_max = 61999;\n"                 \
	"    group = \"mid-ci\"; gid = 61000; ttl = \"5m\"; }\n"                                   \
	");\n"

/* A lookup reads only mapped memory, so it is fast even with the agent
 * stopped. The bound is a wide estimate that a loaded machine also meets. */
#define LOOKUP_MAX_MS 50

static struct {
	void *handle;
	nss_getpwnam_r *getpwnam_r;
	nss_getpwuid_r *getpwuid_r;
	nss_setpwent *setpwent;
	nss_getpwent_r *getpwent_r;
	nss_endpwent *endpwent;
	nss_getgrnam_r *getgrnam_r;
	nss_getgrgid_r *getgrgid_r;
	nss_setgrent *setgrent;
	nss_getgrent_r *getgrent_r;
	nss_endgrent *endgrent;
} module;

/* The agent runs only as root, which alone may issue the lease here. */
static struct harness agent;
static bool agent_running;
static struct mid_lease_info lease; /* the ephemeral account's lease */
static char work_dir[300];	    /* caches written by the tests */

/* ---- module ---- */

static void *symbol_load(const char *name)
{
	void *sym = dlsym(module.handle, name);

	if (!sym)
		fprintf(stderr, "# libnss_mid.so.2 does not export %s\n", name);
	return sym;
}

static int module_load(void)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/nss_mid/.libs/libnss_mid.so.2", getenv("MID_BUILDDIR"));
	module.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!module.handle) {
		fprintf(stderr, "# cannot load %s: %s\n", path, dlerror());
		return -1;
	}
	module.getpwnam_r = symbol_load("_nss_mid_getpwnam_r");
	module.getpwuid_r = symbol_load("_nss_mid_getpwuid_r");
	module.setpwent = symbol_load("_nss_mid_setpwent");
	module.getpwent_r = symbol_load("_nss_mid_getpwent_r");
	module.endpwent = symbol_load("_nss_mid_endpwent");
	module.getgrnam_r = symbol_load("_nss_mid_getgrnam_r");
	module.getgrgid_r = symbol_load("_nss_mid_getgrgid_r");
	module.setgrent = symbol_load("_nss_mid_setgrent");
	module.getgrent_r = symbol_load("_nss_mid_getgrent_r");
	module.endgrent = symbol_load("_nss_mid_endgrent");
	if (!module.getpwnam_r || !module.getpwuid_r || !module.setpwent || !module.getpwent_r ||
	    !module.endpwent || !module.getgrnam_r || !module.getgrgid_r || !module.setgrent ||
	    !module.getgrent_r || !module.endgrent)
		return -1;
	return 0;
}

static enum nss_status pwnam(const char *name, struct passwd *pw, int *err)
{
	static char buffer[4096];

	return module.getpwnam_r(name, pw, buffer, sizeof(buffer), err);
}

static enum nss_status pwuid(uid_t uid, struct passwd *pw, int *err)
{
	static char buffer[4096];

	return module.getpwuid_r(uid, pw, buffer, sizeof(buffer), err);
}

static enum nss_status grnam(const char *name, struct group *gr, int *err)
{
	static char buffer[4096];

	return module.getgrnam_r(name, gr, buffer, sizeof(buffer), err);
}

static enum nss_status grgid(gid_t gid, struct group *gr, int *err)
{
	static char buffer[4096];

	return module.getgrgid_r(gid, gr, buffer, sizeof(buffer), err);
}

static void cache_use(const char *path)
{
	setenv("MID_NSS_CACHE", path, 1);
}

static void agent_cache_use(void)
{
	cache_use(agent.cache_path);
}

static char *agent_dirs_snapshot(void)
{
	char path[600], *state, *run, *both;

	snprintf(path, sizeof(path), "%s/state", agent.dir);
	state = dir_snapshot(path);
	snprintf(path, sizeof(path), "%s/run", agent.dir);
	run = dir_snapshot(path);
	assert_non_null(state);
	assert_non_null(run);
	assert_true(asprintf(&both, "state:\n%srun:\n%s", state, run) > 0);
	free(state);
	free(run);
	return both;
}

/* ---- invalid names ---- */

struct name_case {
	const char *label;
	char name[4200];
};

static struct name_case name_cases[] = {
    {"empty", ""},
    {"256 bytes", ""},
    {"4096 bytes", ""},
    {"slash", "a/b"},
    {"dot-dot", ".."},
    {"dot-dot path", "../../etc/passwd"},
    {"colon", "ci-x:0:0"},
    {"newline", "a\nroot"},
    {"control bytes", "\x1b[31mred\x07\x7f"},
    {"non-UTF-8", "\xff\xfe\xc3("},
    {"all digits", "61000"},
    /* The live ephemeral name with something added: name_cases_fill
     * writes these four once the lease exists. */
    {"account and newline", ""},
    {"account and colon", ""},
    {"account and slash", ""},
    {"account upper case", ""},
    {"class prefix alone", "ci-"},
    {"group and newline", "mid-ci\n"},
};

static void name_cases_fill(void)
{
	memset(name_cases[1].name, 'a', 256);
	memset(name_cases[2].name, 'a', 4096);
	snprintf(name_cases[11].name, sizeof(name_cases[11].name), "%s\n", lease.account);
	snprintf(name_cases[12].name, sizeof(name_cases[12].name), "%s:x", lease.account);
	snprintf(name_cases[13].name, sizeof(name_cases[13].name), "%s/", lease.account);
	for (size_t i = 0; lease.account[i]; i++)
		name_cases[14].name[i] = (char)(lease.account[i] >= 'a' && lease.account[i] <= 'z'
						    ? lease.account[i] - 32
						    : lease.account[i]);
}

static void nss_bad_name(void **state)
{
	const struct name_case *c = *state;
	struct passwd pw = {.pw_name = "sentinel"};
	struct group gr = {.gr_name = "sentinel"};
	char *before, *after;
	int err = 0;

	agent_cache_use();
	before = agent_dirs_snapshot();
	assert_int_equal(pwnam(c->name, &pw, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_string_equal(pw.pw_name, "sentinel");
	err = 0;
	assert_int_equal(grnam(c->name, &gr, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_string_equal(gr.gr_name, "sentinel");

	/* The module never reaches the agent, whose files stay as they were. */
	after = agent_dirs_snapshot();
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* ---- the agent stopped or hung ---- */

static void assert_ephemeral_resolves(void)
{
	struct passwd pw;
	struct group gr;
	int err = 0;
	int64_t start = monotonic_usec(), ms;

	assert_int_equal(pwnam(lease.account, &pw, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(pw.pw_uid, lease.uid);
	assert_int_equal(pw.pw_gid, 61000);
	assert_int_equal(pwuid(lease.uid, &pw, &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_name, lease.account);
	assert_int_equal(grnam("mid-ci", &gr, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(gr.gr_gid, 61000);
	assert_int_equal(grgid(61000, &gr, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(pwnam("ci-00000000", &pw, &err), NSS_STATUS_NOTFOUND);
	ms = (monotonic_usec() - start) / 1000;
	assert_true(ms < LOOKUP_MAX_MS);
}

static void nss_answers_agent_hung(void **state)
{
	agent_cache_use();
	assert_int_equal(kill(agent.pid, SIGSTOP), 0);
	assert_ephemeral_resolves();
	assert_int_equal(kill(agent.pid, SIGCONT), 0);
}

static void nss_answers_agent_stopped(void **state)
{
	agent_cache_use();
	assert_int_equal(harness_stop_agent(&agent), 0);
	assert_ephemeral_resolves();
	assert_int_equal(harness_restart_agent(&agent), 0);
	assert_ephemeral_resolves();
}

/* ---- a reference cache and its damaged copies ---- */

struct expected_user {
	const char *name;
	uid_t uid;
	gid_t gid;
	const char *gecos, *dir, *shell;
};

/* Many users, so that the file spans several pages. */
#define REFERENCE_USERS 300

static struct expected_user reference_users[REFERENCE_USERS];
static char reference_names[REFERENCE_USERS][16];
static char reference_path[400];

static void reference_fill(void)
{
	for (size_t i = 0; i < REFERENCE_USERS; i++) {
		snprintf(reference_names[i], sizeof(reference_names[i]), "user%03zu", i);
		reference_users[i] = (struct expected_user){
		    .name = reference_names[i],
		    .uid = 60000 + (uid_t)i,
		    .gid = 60000 + (gid_t)i,
		    .gecos = i % 2 ? "odd user" : "",
		    .dir = i % 2 ? "/home/odd" : "/home/even",
		    .shell = "/bin/sh",
		};
	}
}

/* Reads all of fd from offset 0 into a new buffer. */
static uint8_t *fd_bytes(int fd, size_t *ret_size)
{
	struct stat st;
	uint8_t *data;

	assert_int_equal(fstat(fd, &st), 0);
	data = malloc((size_t)st.st_size + 1);
	assert_non_null(data);
	assert_int_equal(pread(fd, data, (size_t)st.st_size, 0), st.st_size);
	*ret_size = (size_t)st.st_size;
	return data;
}

static uint8_t *file_bytes(const char *path, size_t *ret_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t *data;

	assert_true(fd >= 0);
	data = fd_bytes(fd, ret_size);
	close(fd);
	return data;
}

static void reference_publish(const char *path, uint64_t generation)
{
	struct mid_cache_builder *b = NULL;
	int64_t now = time(NULL);

	assert_int_equal(mid_cache_builder_new(&b), 0);
	for (size_t i = 0; i < REFERENCE_USERS; i++) {
		const struct expected_user *u = &reference_users[i];

		assert_int_equal(mid_cache_builder_add_user(b, u->name, u->uid, u->gid,
							    *u->gecos ? u->gecos : NULL, u->dir,
							    u->shell, now + 3600),
				 0);
		assert_int_equal(mid_cache_builder_add_group(b, u->name, u->gid, now + 3600), 0);
		assert_int_equal(mid_cache_builder_add_managed(b, u->name), 0);
	}
	assert_int_equal(mid_cache_builder_publish(b, path, generation, now), 0);
	mid_cache_builder_free(b);
}

static const struct expected_user *reference_by_uid(uid_t uid)
{
	for (size_t i = 0; i < REFERENCE_USERS; i++)
		if (reference_users[i].uid == uid)
			return &reference_users[i];
	return NULL;
}

static const struct expected_user *reference_by_name(const char *name)
{
	for (size_t i = 0; i < REFERENCE_USERS; i++)
		if (strcmp(reference_users[i].name, name) == 0)
			return &reference_users[i];
	return NULL;
}

/* Outcome codes of a child's lookups: 0 is fine. */
enum {
	OUTCOME_FINE = 0,
	OUTCOME_WRONG_USER = 10,
	OUTCOME_WRONG_GROUP = 11,
	OUTCOME_BAD_STATUS = 12,
};

static bool user_matches(const struct passwd *pw, const struct expected_user *u)
{
	return u && strcmp(pw->pw_name, u->name) == 0 && pw->pw_uid == u->uid &&
	       pw->pw_gid == u->gid && strcmp(pw->pw_gecos, u->gecos) == 0 &&
	       strcmp(pw->pw_dir, u->dir) == 0 && strcmp(pw->pw_shell, u->shell) == 0 &&
	       strcmp(pw->pw_passwd, "x") == 0;
}

static bool group_matches(const struct group *gr, const struct expected_user *u)
{
	return u && strcmp(gr->gr_name, u->name) == 0 && gr->gr_gid == u->gid && gr->gr_mem &&
	       !gr->gr_mem[0];
}

static bool status_is_allowed(enum nss_status s)
{
	return s == NSS_STATUS_SUCCESS || s == NSS_STATUS_NOTFOUND || s == NSS_STATUS_UNAVAIL;
}

static int wrong_user(const struct passwd *pw, const char *call)
{
	char name[200];

	printf("#   %s returned %s uid %u gid %u home %.40s\n", call,
	       bytes_escape(pw->pw_name, name, sizeof(name)), (unsigned)pw->pw_uid,
	       (unsigned)pw->pw_gid, pw->pw_dir);
	fflush(stdout);
	return OUTCOME_WRONG_USER;
}

static int wrong_group(const struct group *gr, const char *call)
{
	char name[200];

	printf("#   %s returned %s gid %u\n", call, bytes_escape(gr->gr_name, name, sizeof(name)),
	       (unsigned)gr->gr_gid);
	fflush(stdout);
	return OUTCOME_WRONG_GROUP;
}

/* Looks users and groups up in the cache at path, the way a program
 * would, and returns an outcome code. Runs in the forked child. */
static int lookups_check(const char *path)
{
	const char *names[] = {"user000", "user001", "user150", "user299", "mallory", ""};
	const uid_t uids[] = {60000, 60001, 60150, 60299, 4242, 0};
	char buffer[4096];
	struct passwd pw;
	struct group gr;
	enum nss_status s;
	int err;

	cache_use(path);
	for (size_t i = 0; i < MID_ELEMENTSOF(names); i++) {
		s = pwnam(names[i], &pw, &err);
		if (!status_is_allowed(s))
			return OUTCOME_BAD_STATUS;
		if (s == NSS_STATUS_SUCCESS && !user_matches(&pw, reference_by_name(names[i])))
			return wrong_user(&pw, "getpwnam_r");
		s = grnam(names[i], &gr, &err);
		if (!status_is_allowed(s))
			return OUTCOME_BAD_STATUS;
		if (s == NSS_STATUS_SUCCESS && !group_matches(&gr, reference_by_name(names[i])))
			return wrong_group(&gr, "getgrnam_r");
	}
	for (size_t i = 0; i < MID_ELEMENTSOF(uids); i++) {
		s = pwuid(uids[i], &pw, &err);
		if (!status_is_allowed(s))
			return OUTCOME_BAD_STATUS;
		if (s == NSS_STATUS_SUCCESS &&
		    (pw.pw_uid != uids[i] || !user_matches(&pw, reference_by_uid(uids[i]))))
			return wrong_user(&pw, "getpwuid_r");
		s = grgid(uids[i], &gr, &err);
		if (!status_is_allowed(s))
			return OUTCOME_BAD_STATUS;
		if (s == NSS_STATUS_SUCCESS &&
		    (gr.gr_gid != uids[i] || !group_matches(&gr, reference_by_uid(uids[i]))))
			return wrong_group(&gr, "getgrgid_r");
	}

	/* Enumeration: every entry returned must be one of the reference's. */
	module.setpwent(0);
	for (int i = 0; i < REFERENCE_USERS + 5; i++) {
		s = module.getpwent_r(&pw, buffer, sizeof(buffer), &err);
		if (s != NSS_STATUS_SUCCESS)
			break;
		if (!user_matches(&pw, reference_by_name(pw.pw_name)))
			return wrong_user(&pw, "getpwent_r");
	}
	module.endpwent();
	module.setgrent(0);
	for (int i = 0; i < REFERENCE_USERS + 5; i++) {
		s = module.getgrent_r(&gr, buffer, sizeof(buffer), &err);
		if (s != NSS_STATUS_SUCCESS)
			break;
		if (!group_matches(&gr, reference_by_name(gr.gr_name)))
			return wrong_group(&gr, "getgrent_r");
	}
	module.endgrent();
	return OUTCOME_FINE;
}

/* Runs lookups_check in a child. Returns its exit code, or 128 plus the
 * signal that killed it. */
static int lookups_in_child(const char *path)
{
	int status;
	pid_t pid;

	/* The child must not flush output the parent has buffered. */
	fflush(stdout);
	pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		child_signals_reset();
		alarm(10);
		_exit(lookups_check(path));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

static const char *outcome_describe(int outcome)
{
	static char text[64];

	switch (outcome) {
	case OUTCOME_FINE:
		return "fine";
	case OUTCOME_WRONG_USER:
		return "a wrong passwd entry";
	case OUTCOME_WRONG_GROUP:
		return "a wrong group entry";
	case OUTCOME_BAD_STATUS:
		return "a status other than SUCCESS, NOTFOUND or UNAVAIL";
	default:
		if (outcome > 128) {
			snprintf(text, sizeof(text), "a crash with signal %d (%s)", outcome - 128,
				 strsignal(outcome - 128));
			return text;
		}
		snprintf(text, sizeof(text), "exit code %d", outcome);
		return text;
	}
}

static uint8_t *reference_bytes(size_t *ret_size)
{
	uint8_t *data = (uint8_t *)file_read_all(reference_path, ret_size);

	assert_non_null(data);
	assert_true(*ret_size > sizeof(struct mid_cache_header));
	return data;
}

static void bytes_write(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
}

/* Damaged caches whose lookups went wrong in the current test. */
static unsigned damaged_failures;

/* Writes data to a fresh file (a new name each time, so the module cannot
 * mistake it for one it has mapped) and checks the lookups on it. A
 * failure is printed and counted, so that one run lists every case. */
static void damaged_cache_check(const char *label, const void *data, size_t size)
{
	static unsigned serial;
	char path[500];
	int outcome;

	snprintf(path, sizeof(path), "%s/damaged-%u.cache", work_dir, serial++);
	bytes_write(path, data, size);
	outcome = lookups_in_child(path);
	unlink(path);
	if (outcome != OUTCOME_FINE) {
		printf("# cache with %s: lookups gave %s\n", label, outcome_describe(outcome));
		damaged_failures++;
	}
}

static void nss_reference_cache_correct(void **state)
{
	/* The checker itself: every lookup on the undamaged file succeeds. */
	struct passwd pw;
	int err;

	cache_use(reference_path);
	assert_int_equal(pwnam("user150", &pw, &err), NSS_STATUS_SUCCESS);
	assert_true(user_matches(&pw, reference_by_name("user150")));
	assert_int_equal(lookups_in_child(reference_path), OUTCOME_FINE);
}

static void nss_cache_missing_unavailable(void **state)
{
	char path[500], buffer[1024];
	struct passwd pw;
	struct group gr;
	int err = 0;

	snprintf(path, sizeof(path), "%s/missing.cache", work_dir);
	cache_use(path);
	assert_int_equal(pwnam("user000", &pw, &err), NSS_STATUS_UNAVAIL);
	assert_int_equal(pwuid(60000, &pw, &err), NSS_STATUS_UNAVAIL);
	assert_int_equal(grnam("user000", &gr, &err), NSS_STATUS_UNAVAIL);
	assert_int_equal(grgid(60000, &gr, &err), NSS_STATUS_UNAVAIL);
	assert_int_equal(module.setpwent(0), NSS_STATUS_UNAVAIL);
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_UNAVAIL);
	module.endpwent();
}

static void nss_cache_directory_unavailable(void **state)
{
	struct passwd pw;
	int err = 0;

	/* A directory at the cache path. */
	cache_use(work_dir);
	assert_int_equal(pwnam("user000", &pw, &err), NSS_STATUS_UNAVAIL);
}

/* A FIFO at the cache path, which no process writes: the open must not
 * block the lookup. */
static void nss_cache_fifo_unavailable(void **state)
{
	char path[500];
	struct passwd pw;
	int err = 0;
	int64_t start;

	snprintf(path, sizeof(path), "%s/fifo.cache", work_dir);
	assert_int_equal(mkfifo(path, 0644), 0);
	cache_use(path);
	start = monotonic_usec();
	assert_int_equal(pwnam("user000", &pw, &err), NSS_STATUS_UNAVAIL);
	assert_true(monotonic_usec() - start < LOOKUP_MAX_MS * 1000);
	unlink(path);
}

static void nss_cache_truncated_file(void **state)
{
	size_t size;
	uint8_t *data = reference_bytes(&size);
	const size_t lengths[] = {0,
				  1,
				  8,
				  sizeof(struct mid_cache_header) - 1,
				  sizeof(struct mid_cache_header),
				  4096,
				  size / 2,
				  size - 1};
	char label[64];

	damaged_failures = 0;

	for (size_t i = 0; i < MID_ELEMENTSOF(lengths); i++) {
		snprintf(label, sizeof(label), "only its first %zu of %zu bytes", lengths[i], size);
		damaged_cache_check(label, data, lengths[i]);
	}
	free(data);
	assert_int_equal(damaged_failures, 0);
}

static void nss_cache_extended_file(void **state)
{
	size_t size;
	uint8_t *data = reference_bytes(&size);
	uint8_t *longer = malloc(size + 4096);

	damaged_failures = 0;

	assert_non_null(longer);
	memcpy(longer, data, size);
	memset(longer + size, 0xa5, 4096);
	damaged_cache_check("4096 bytes of junk appended", longer, size + 4096);
	free(longer);
	free(data);
	assert_int_equal(damaged_failures, 0);
}

/* A mapped file cut short in place (": > nss.cache" by root) would raise
 * SIGBUS in every process that maps it, as with any shared mapping. The
 * guarantee is therefore that mid never changes a published file except
 * for its stale word: a republish writes a new inode and renames it. */
static void nss_cache_never_rewritten_in_place(void **state)
{
	const size_t stale_at = offsetof(struct mid_cache_header, stale);
	char path[500];
	struct stat before, after, replaced;
	uint8_t *old_bytes, *kept_bytes;
	size_t old_size, kept_size;
	int fd;

	snprintf(path, sizeof(path), "%s/in-place.cache", work_dir);
	reference_publish(path, 1);
	assert_int_equal(stat(path, &before), 0);
	old_bytes = file_bytes(path, &old_size);

	/* Keep the published inode reachable through a descriptor, then
	 * publish a new generation over the path. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	reference_publish(path, 2);
	assert_int_equal(stat(path, &replaced), 0);
	assert_int_equal(fstat(fd, &after), 0);
	kept_bytes = fd_bytes(fd, &kept_size);
	close(fd);

	assert_int_not_equal(replaced.st_ino, before.st_ino);
	assert_int_equal(after.st_ino, before.st_ino);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(kept_size, old_size);
	/* Only the stale word changed, from 0 to 1. */
	assert_memory_equal(kept_bytes, old_bytes, stale_at);
	assert_memory_equal(kept_bytes + stale_at + 4, old_bytes + stale_at + 4,
			    old_size - stale_at - 4);
	assert_int_equal(((const struct mid_cache_header *)kept_bytes)->stale, 1);
	assert_int_equal(((const struct mid_cache_header *)old_bytes)->stale, 0);
	assert_int_equal(replaced.st_mode & 07777, 0644);
	free(old_bytes);
	free(kept_bytes);
	unlink(path);
}

static void nss_cache_random_bytes(void **state)
{
	unsigned seed = test_seed(1);
	size_t ref_size;
	uint8_t *ref = reference_bytes(&ref_size);
	uint8_t *data = malloc(16384);
	char label[96];

	damaged_failures = 0;

	assert_non_null(data);
	printf("# random caches with seed %u\n", seed);
	srandom(seed);
	for (int i = 0; i < 200; i++) {
		size_t size = (size_t)(random() % 16384);

		for (size_t j = 0; j < size; j++)
			data[j] = (uint8_t)random();
		/* Every other file has a valid magic and version, so the
		 * reader gets past its first checks. */
		if (i % 2 && size >= 16)
			memcpy(data, ref, 16);
		snprintf(label, sizeof(label), "%zu random bytes (seed %u, file %d)", size, seed,
			 i);
		damaged_cache_check(label, data, size);
	}
	free(data);
	free(ref);
	assert_int_equal(damaged_failures, 0);
}

/* Every byte of the header set to a few values in turn. The stale flag,
 * generation and write time are meant to change and are left alone. The
 * format carries no checksum, so a changed uid or name in a record makes
 * a different valid file, not a damaged one, and is not tried here. */
static void nss_cache_header_bytes(void **state)
{
	const uint8_t values[] = {0x00, 0x01, 0x3a, 0x80, 0xff};
	size_t size;
	uint8_t *ref = reference_bytes(&size);
	uint8_t *data = malloc(size);
	char label[96];

	damaged_failures = 0;

	assert_non_null(data);
	for (size_t at = 0; at < sizeof(struct mid_cache_header); at++) {
		if (at >= offsetof(struct mid_cache_header, generation) &&
		    at < offsetof(struct mid_cache_header, n_users))
			continue;
		for (size_t v = 0; v < MID_ELEMENTSOF(values); v++) {
			if (ref[at] == values[v])
				continue;
			memcpy(data, ref, size);
			data[at] = values[v];
			snprintf(label, sizeof(label), "header byte %zu set to 0x%02x", at,
				 values[v]);
			damaged_cache_check(label, data, size);
		}
	}
	free(data);
	free(ref);
	assert_int_equal(damaged_failures, 0);
}

enum header_change_kind {
	HEADER_SET,  /* the field becomes value */
	HEADER_ADD,  /* value is added to the field */
	HEADER_COPY, /* the field takes the value of the field at copy_from */
};

struct header_change {
	const char *label;
	size_t offset;
	size_t width;
	enum header_change_kind kind;
	uint64_t value;
	size_t copy_from;
};

#define H_OFFSET(f) offsetof(struct mid_cache_header, f)
#define H_WIDTH(f)  sizeof(((struct mid_cache_header *)0)->f)
#define H_SET(label, f, v)                                                                         \
	{                                                                                          \
		label, H_OFFSET(f), H_WIDTH(f), HEADER_SET, v, 0                                   \
	}
#define H_ADD(label, f, v)                                                                         \
	{                                                                                          \
		label, H_OFFSET(f), H_WIDTH(f), HEADER_ADD, v, 0                                   \
	}
#define H_COPY(label, f, from)                                                                     \
	{                                                                                          \
		label, H_OFFSET(f), H_WIDTH(f), HEADER_COPY, 0, H_OFFSET(from)                     \
	}

static void header_change_apply(uint8_t *data, const struct header_change *c)
{
	uint64_t field = 0, v;

	memcpy(&field, data + c->offset, c->width);
	switch (c->kind) {
	case HEADER_SET:
		v = c->value;
		break;
	case HEADER_ADD:
		v = field + c->value;
		break;
	case HEADER_COPY:
	default:
		memcpy(&v, data + c->copy_from, sizeof(v));
		break;
	}
	/* Both widths are little-endian on the hosts this runs on. */
	memcpy(data + c->offset, &v, c->width);
}

static void nss_cache_bad_offsets(void **state)
{
	const struct header_change changes[] = {
	    H_SET("version 2", version, 2),
	    H_SET("header_size 0", header_size, 0),
	    H_SET("header_size 1 GiB", header_size, 1u << 30),
	    H_ADD("file_size one more", file_size, 1),
	    H_SET("n_users over the limit", n_users, MID_CACHE_MAX_RECORDS + 1),
	    H_SET("n_users 0", n_users, 0),
	    H_SET("n_users 100000", n_users, 100000),
	    H_SET("n_groups 0", n_groups, 0),
	    H_SET("n_groups 100000", n_groups, 100000),
	    H_SET("n_managed 100000", n_managed, 100000),
	    H_SET("user_buckets 0", user_buckets, 0),
	    H_SET("user_buckets 3", user_buckets, 3),
	    H_SET("user_buckets 1", user_buckets, 1),
	    H_SET("user_buckets 2^31", user_buckets, 1u << 31),
	    H_SET("group_buckets 2^31", group_buckets, 1u << 31),
	    H_SET("managed_buckets 0", managed_buckets, 0),
	    H_SET("users_off 0", users_off, 0),
	    H_ADD("users_off unaligned", users_off, 4),
	    H_SET("users_off past the end", users_off, 1u << 30),
	    H_SET("users_off UINT64_MAX", users_off, UINT64_MAX),
	    H_SET("users_off aligned near UINT64_MAX", users_off, UINT64_MAX - 7),
	    H_SET("groups_off UINT64_MAX - 7", groups_off, UINT64_MAX - 7),
	    H_SET("user_name_index_off past the end", user_name_index_off, 1u << 30),
	    H_SET("user_uid_index_off 8", user_uid_index_off, 8),
	    H_SET("group_gid_index_off UINT64_MAX - 7", group_gid_index_off, UINT64_MAX - 7),
	    H_SET("managed_index_off past the end", managed_index_off, 1u << 30),
	    H_SET("strings_off 0", strings_off, 0),
	    H_SET("strings_off UINT64_MAX - 7", strings_off, UINT64_MAX - 7),
	    H_SET("strings_size 0", strings_size, 0),
	    H_SET("strings_size UINT64_MAX", strings_size, UINT64_MAX),
	    H_SET("strings_size 2^32", strings_size, 1ull << 32),
	};
	size_t size;
	uint8_t *ref = reference_bytes(&size);
	uint8_t *data = malloc(size);

	damaged_failures = 0;

	assert_non_null(data);
	for (size_t i = 0; i < MID_ELEMENTSOF(changes); i++) {
		memcpy(data, ref, size);
		header_change_apply(data, &changes[i]);
		damaged_cache_check(changes[i].label, data, size);
	}
	free(data);
	free(ref);
	assert_int_equal(damaged_failures, 0);
}

/* Sections that point at one another: each is in bounds and aligned, so
 * only a check of the layout itself can tell. */
static void nss_cache_overlapping_sections(void **state)
{
	const struct header_change changes[] = {
	    H_COPY("users section on the groups section", users_off, groups_off),
	    H_COPY("groups section on the users section", groups_off, users_off),
	    H_COPY("users section on the strings", users_off, strings_off),
	    H_COPY("name index on the uid index", user_name_index_off, user_uid_index_off),
	    H_COPY("uid index on the users section", user_uid_index_off, users_off),
	    H_COPY("group name index on the user name index", group_name_index_off,
		   user_name_index_off),
	    H_COPY("managed index on the strings", managed_index_off, strings_off),
	    H_COPY("strings on the users section", strings_off, users_off),
	};
	size_t size;
	uint8_t *ref = reference_bytes(&size);
	uint8_t *data = malloc(size);

	damaged_failures = 0;

	assert_non_null(data);
	for (size_t i = 0; i < MID_ELEMENTSOF(changes); i++) {
		memcpy(data, ref, size);
		header_change_apply(data, &changes[i]);
		damaged_cache_check(changes[i].label, data, size);
	}
	free(data);
	free(ref);
	assert_int_equal(damaged_failures, 0);
}

static void nss_cache_bad_records(void **state)
{
	size_t size;
	uint8_t *ref = reference_bytes(&size);
	uint8_t *data = malloc(size);
	const struct mid_cache_header *h = (const struct mid_cache_header *)(const void *)ref;
	struct mid_cache_user *users;
	struct mid_cache_group *groups;
	uint32_t *index;

	damaged_failures = 0;

	assert_non_null(data);

	/* String offsets out of the strings region. */
	memcpy(data, ref, size);
	users = (struct mid_cache_user *)(void *)(data + h->users_off);
	for (uint32_t i = 0; i < h->n_users; i++)
		users[i].dir = (uint32_t)h->strings_size + i;
	damaged_cache_check("home directory offsets past the strings", data, size);

	memcpy(data, ref, size);
	users = (struct mid_cache_user *)(void *)(data + h->users_off);
	for (uint32_t i = 0; i < h->n_users; i++)
		users[i].name = UINT32_MAX - 1;
	damaged_cache_check("name offsets near UINT32_MAX", data, size);

	memcpy(data, ref, size);
	groups = (struct mid_cache_group *)(void *)(data + h->groups_off);
	for (uint32_t i = 0; i < h->n_groups; i++)
		groups[i].name = (uint32_t)h->strings_size;
	damaged_cache_check("group name offsets at the strings' end", data, size);

	/* Index slots naming records that do not exist. */
	memcpy(data, ref, size);
	index = (uint32_t *)(void *)(data + h->user_name_index_off);
	for (uint32_t i = 0; i < h->user_buckets; i++)
		if (index[i] != MID_CACHE_EMPTY)
			index[i] = h->n_users + i;
	damaged_cache_check("name index slots past the records", data, size);

	memcpy(data, ref, size);
	index = (uint32_t *)(void *)(data + h->group_gid_index_off);
	for (uint32_t i = 0; i < h->group_buckets; i++)
		if (index[i] != MID_CACHE_EMPTY)
			index[i] = h->n_groups;
	damaged_cache_check("gid index slots past the records", data, size);

	/* Index tables without an empty slot: every probe must still end. */
	memcpy(data, ref, size);
	index = (uint32_t *)(void *)(data + h->user_name_index_off);
	for (uint32_t i = 0; i < h->user_buckets; i++)
		index[i] = i % h->n_users;
	index = (uint32_t *)(void *)(data + h->user_uid_index_off);
	for (uint32_t i = 0; i < h->user_buckets; i++)
		index[i] = i % h->n_users;
	damaged_cache_check("full user indexes", data, size);

	memcpy(data, ref, size);
	index = (uint32_t *)(void *)(data + h->managed_index_off);
	for (uint32_t i = 0; i < h->managed_buckets; i++)
		index[i] = (uint32_t)h->strings_size + 1;
	damaged_cache_check("managed index slots past the strings", data, size);

	/* The strings region without its final NUL. */
	memcpy(data, ref, size);
	memset(data + h->strings_off, 'x', h->strings_size);
	damaged_cache_check("strings without any NUL", data, size);

	memcpy(data, ref, size);
	data[h->strings_off + h->strings_size - 1] = 'x';
	damaged_cache_check("strings without the final NUL", data, size);

	free(data);
	free(ref);
	assert_int_equal(damaged_failures, 0);
}

/* ---- replacement ---- */

/* A second version of the reference: the same names with other homes. */
static void other_version_publish(const char *path, uint64_t generation)
{
	struct mid_cache_builder *b = NULL;
	int64_t now = time(NULL);

	assert_int_equal(mid_cache_builder_new(&b), 0);
	for (size_t i = 0; i < REFERENCE_USERS; i++) {
		const struct expected_user *u = &reference_users[i];

		assert_int_equal(mid_cache_builder_add_user(b, u->name, u->uid, u->gid, NULL,
							    "/replaced", "/bin/false", now + 3600),
				 0);
	}
	assert_int_equal(mid_cache_builder_publish(b, path, generation, now), 0);
	mid_cache_builder_free(b);
}

/* True when pw is user150 as the reference or as the other version has it. */
static bool user150_consistent(const struct passwd *pw)
{
	if (strcmp(pw->pw_name, "user150") != 0 || pw->pw_uid != 60150 || pw->pw_gid != 60150)
		return false;
	if (strcmp(pw->pw_dir, "/home/even") == 0)
		return strcmp(pw->pw_shell, "/bin/sh") == 0 && strcmp(pw->pw_gecos, "") == 0;
	return strcmp(pw->pw_dir, "/replaced") == 0 && strcmp(pw->pw_shell, "/bin/false") == 0;
}

static void nss_cache_renamed_between_lookups(void **state)
{
	char path[500], side[500];
	struct passwd pw;
	int err = 0;
	bool replaced = false;
	int64_t start;

	snprintf(path, sizeof(path), "%s/renamed.cache", work_dir);
	snprintf(side, sizeof(side), "%s/renamed-side.cache", work_dir);
	reference_publish(path, 1);
	cache_use(path);
	assert_int_equal(pwnam("user150", &pw, &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_dir, "/home/even");

	/* A bare rename leaves no stale flag in the old file: the reader
	 * must notice the new inode within about a second. */
	other_version_publish(side, 2);
	assert_int_equal(rename(side, path), 0);
	start = monotonic_usec();
	while (!replaced && monotonic_usec() - start < 3000000) {
		assert_int_equal(pwnam("user150", &pw, &err), NSS_STATUS_SUCCESS);
		if (!user150_consistent(&pw))
			fail_msg("mixed answer after a rename: home %s, shell %s", pw.pw_dir,
				 pw.pw_shell);
		replaced = strcmp(pw.pw_dir, "/replaced") == 0;
		if (!replaced)
			usleep(20000);
	}
	printf("# bare rename noticed after %lld ms\n",
	       (long long)(monotonic_usec() - start) / 1000);
	assert_true(replaced);
	assert_int_equal(pwnam("user150", &pw, &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_shell, "/bin/false");
}

struct hammer {
	const bool *stop;
	long lookups;
	long wrong;
	long unavailable;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;

	while (!__atomic_load_n(h->stop, __ATOMIC_RELAXED)) {
		char buffer[1024];
		struct passwd pw;
		int err = 0;
		enum nss_status s = module.getpwnam_r("user150", &pw, buffer, sizeof(buffer), &err);

		if (s == NSS_STATUS_SUCCESS && !user150_consistent(&pw))
			h->wrong++;
		else if (s != NSS_STATUS_SUCCESS)
			h->unavailable++;
		h->lookups++;
	}
	return NULL;
}

static void nss_cache_replaced_during_lookups(void **state)
{
	char path[500], side[500];
	struct hammer hammers[3];
	pthread_t threads[3];
	bool stop = false;
	long unavailable = 0;

	snprintf(path, sizeof(path), "%s/busy.cache", work_dir);
	snprintf(side, sizeof(side), "%s/busy-side.cache", work_dir);
	reference_publish(path, 1);
	cache_use(path);

	for (size_t i = 0; i < MID_ELEMENTSOF(threads); i++) {
		hammers[i] = (struct hammer){.stop = &stop};
		assert_int_equal(pthread_create(&threads[i], NULL, hammer_run, &hammers[i]), 0);
	}
	/* Bare renames of the two versions over each other, with the old
	 * file unlinked while readers may still map it. */
	for (int i = 0; i < 40; i++) {
		if (i % 2)
			reference_publish(side, (uint64_t)i + 2);
		else
			other_version_publish(side, (uint64_t)i + 2);
		assert_int_equal(rename(side, path), 0);
		usleep(5000);
	}
	__atomic_store_n(&stop, true, __ATOMIC_RELAXED);
	for (size_t i = 0; i < MID_ELEMENTSOF(threads); i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_true(hammers[i].lookups > 0);
		assert_int_equal(hammers[i].wrong, 0);
		unavailable += hammers[i].unavailable;
	}
	/* The path always names a complete file, so no lookup may fail. */
	assert_int_equal(unavailable, 0);
}

/* ---- descriptors ---- */

static void nss_fork_close_all_keeps_descriptors(void **state)
{
	char path[500], side[500];
	struct passwd pw;
	int err = 0, status;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/fork.cache", work_dir);
	snprintf(side, sizeof(side), "%s/fork-side.cache", work_dir);
	reference_publish(path, 1);
	/* Written here because the child must not use cmocka's asserts. */
	other_version_publish(side, 2);
	cache_use(path);
	assert_int_equal(pwnam("user001", &pw, &err), NSS_STATUS_SUCCESS);

	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stat before, after;
		int fd;

		child_signals_reset();
		alarm(10);
		/* A daemon's start: every descriptor closed, then its own. */
		for (int i = 0; i < 1024; i++)
			close(i);
		fd = open("/dev/null", O_RDWR);
		if (fd != 0 || dup(fd) != 1 || dup(fd) != 2)
			_exit(20);
		fd = open(path, O_RDONLY);
		if (fd != 3 || fstat(fd, &before) < 0)
			_exit(21);

		/* Lookups that reopen the cache after a new file appears. */
		if (pwnam("user001", &pw, &err) != NSS_STATUS_SUCCESS)
			_exit(22);
		if (rename(side, path) < 0)
			_exit(23);
		for (int i = 0; i < 30; i++) {
			if (pwnam("user001", &pw, &err) != NSS_STATUS_SUCCESS)
				_exit(24);
			usleep(50000);
		}
		if (strcmp(pw.pw_dir, "/replaced") != 0)
			_exit(25);

		/* Descriptor 3 is still the child's own file. */
		if (fstat(3, &after) < 0 || after.st_ino != before.st_ino ||
		    after.st_dev != before.st_dev)
			_exit(26);
		if (fcntl(4, F_GETFD) >= 0)
			_exit(27);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void nss_no_descriptor_held(void **state)
{
	char *before = descriptor_list(), *after;
	char buffer[1024];
	struct passwd pw;
	int err = 0;

	assert_non_null(before);
	cache_use(reference_path);
	assert_int_equal(pwnam("user150", &pw, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(pwuid(60150, &pw, &err), NSS_STATUS_SUCCESS);
	/* An enumeration left open, as programs often leave it. */
	assert_int_equal(module.setpwent(0), NSS_STATUS_SUCCESS);
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	after = descriptor_list();
	assert_non_null(after);
	module.endpwent();

	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void nss_no_descriptor_inherited(void **state)
{
	char *before = child_descriptor_list(), *after;
	char buffer[1024];
	struct passwd pw;
	struct group gr;
	int err = 0;

	assert_non_null(before);
	cache_use(reference_path);
	assert_int_equal(pwnam("user150", &pw, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(grnam("user150", &gr, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(module.setgrent(0), NSS_STATUS_SUCCESS);
	assert_int_equal(module.getgrent_r(&gr, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	after = child_descriptor_list();
	assert_non_null(after);
	module.endgrent();

	assert_null(strstr(after, MID_CACHE_FILE_NAME));
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static int group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");

	if (module_load() < 0)
		return -1;
	if (geteuid() == 0) {
		if (harness_start(&agent, NULL, POLICY) < 0)
			return -1;
		agent_running = true;
		if (harness_issue(&agent, NULL, "ci", 0, NULL, &lease) != MID_OK)
			return -1;
	}
	name_cases_fill();
	reference_fill();

	snprintf(work_dir, sizeof(work_dir), "%s/mid-hardening-nss.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(work_dir))
		return -1;
	snprintf(reference_path, sizeof(reference_path), "%s/reference.cache", work_dir);
	reference_publish(reference_path, 1);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[400];

	if (agent_running)
		harness_stop(&agent);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work_dir);
	if (work_dir[0] && !getenv("MID_KEEP_TEST_DIR") && system(cmd) != 0)
		fprintf(stderr, "# failed to remove %s\n", work_dir);
	if (module.handle)
		dlclose(module.handle);
	return 0;
}

#define MAX_TESTS 64

int main(void)
{
	static const struct CMUnitTest with_agent[] = {
	    cmocka_unit_test(nss_answers_agent_hung),
	    cmocka_unit_test(nss_answers_agent_stopped),
	};
	static const struct CMUnitTest without_agent[] = {
	    cmocka_unit_test(nss_reference_cache_correct),
	    cmocka_unit_test(nss_cache_missing_unavailable),
	    cmocka_unit_test(nss_cache_directory_unavailable),
	    cmocka_unit_test(nss_cache_fifo_unavailable),
	    cmocka_unit_test(nss_cache_truncated_file),
	    cmocka_unit_test(nss_cache_extended_file),
	    cmocka_unit_test(nss_cache_never_rewritten_in_place),
	    cmocka_unit_test(nss_cache_random_bytes),
	    cmocka_unit_test(nss_cache_header_bytes),
	    cmocka_unit_test(nss_cache_bad_offsets),
	    cmocka_unit_test(nss_cache_overlapping_sections),
	    cmocka_unit_test(nss_cache_bad_records),
	    cmocka_unit_test(nss_cache_renamed_between_lookups),
	    cmocka_unit_test(nss_cache_replaced_during_lookups),
	    cmocka_unit_test(nss_fork_close_all_keeps_descriptors),
	    cmocka_unit_test(nss_no_descriptor_held),
	    cmocka_unit_test(nss_no_descriptor_inherited),
	};
	struct CMUnitTest tests[MAX_TESTS];
	char names[MID_ELEMENTSOF(name_cases)][64];
	size_t n = 0;

	if (!getenv("MID_BUILDDIR")) {
		fprintf(stderr, "test_nss_hostile: MID_BUILDDIR must name the build directory\n");
		return 1;
	}
	/* cmocka reports a skipped test as "not ok # SKIP", which automake's
	 * TAP driver counts as a failure, so tests that need the agent are
	 * left out when not root. */
	if (geteuid() == 0) {
		for (size_t i = 0; i < MID_ELEMENTSOF(name_cases); i++) {
			snprintf(names[i], sizeof(names[i]), "nss_bad_name %s",
				 name_cases[i].label);
			tests[n++] = (struct CMUnitTest){
			    .name = names[i],
			    .test_func = nss_bad_name,
			    .initial_state = &name_cases[i],
			};
		}
		for (size_t i = 0; i < MID_ELEMENTSOF(with_agent); i++)
			tests[n++] = with_agent[i];
	} else
		printf("# not root: the tests that need an agent are left out\n");
	for (size_t i = 0; i < MID_ELEMENTSOF(without_agent); i++)
		tests[n++] = without_agent[i];
	return _cmocka_run_group_tests("libnss_mid hostile input", tests, n, group_setup,
				       group_teardown);
}
