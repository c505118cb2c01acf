/* Tests of the built libnss_mid.so.2, loaded with dlopen as glibc loads it,
 * against caches written by the builder. The module reads the real clock,
 * so every cache here is written relative to time(NULL). */
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
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "cache.h"

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
	nss_initgroups_dyn *initgroups_dyn;
} module;

struct fixture {
	char dir[256];
	char path[320];
};

static void *symbol_load(const char *name)
{
	void *sym = dlsym(module.handle, name);

	if (!sym)
		fprintf(stderr, "# libnss_mid.so.2 does not export %s\n", name);
	return sym;
}

static int module_load(void **state)
{
	const char *builddir = getenv("MID_BUILDDIR");
	char path[4096];

	if (!builddir) {
		fprintf(stderr, "# MID_BUILDDIR is not set; run the test through make check\n");
		return -1;
	}
	snprintf(path, sizeof(path), "%s/nss_mid/.libs/libnss_mid.so.2", builddir);
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
	module.initgroups_dyn = symbol_load("_nss_mid_initgroups_dyn");
	if (!module.getpwnam_r || !module.getpwuid_r || !module.setpwent || !module.getpwent_r ||
	    !module.endpwent || !module.getgrnam_r || !module.getgrgid_r || !module.setgrent ||
	    !module.getgrent_r || !module.endgrent || !module.initgroups_dyn)
		return -1;
	return 0;
}

static int module_unload(void **state)
{
	if (module.handle)
		dlclose(module.handle);
	return 0;
}

/* alice and bob are live for an hour, old expired ten seconds ago. */
static void sample_publish(const char *path)
{
	struct mid_cache_builder *b = NULL;
	int64_t now = time(NULL);

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_user(b, "alice", 60001, 60001, "Alice Ephemeral",
						    "/home/alice", "/bin/bash", now + 3600),
			 0);
	assert_int_equal(mid_cache_builder_add_user(b, "old", 60003, 60003, NULL, "/home/old",
						    "/bin/sh", now - 10),
			 0);
	assert_int_equal(mid_cache_builder_add_user(b, "bob", 60002, 60002, NULL, "/home/bob",
						    "/bin/sh", now + 3600),
			 0);
	assert_int_equal(mid_cache_builder_add_group(b, "alice", 60001, now + 3600), 0);
	assert_int_equal(mid_cache_builder_add_group(b, "old", 60003, now - 10), 0);
	assert_int_equal(mid_cache_builder_add_group(b, "bob", 60002, now + 3600), 0);
	assert_int_equal(mid_cache_builder_publish(b, path, 1, now), 0);
	mid_cache_builder_free(b);
}

/* The cache after alice's lease ended and carol's began. */
static void successor_publish(const char *path)
{
	struct mid_cache_builder *b = NULL;
	int64_t now = time(NULL);

	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_user(b, "carol", 60004, 60004, NULL, "/home/carol",
						    "/bin/bash", now + 3600),
			 0);
	assert_int_equal(mid_cache_builder_add_group(b, "carol", 60004, now + 3600), 0);
	assert_int_equal(mid_cache_builder_publish(b, path, 2, now), 0);
	mid_cache_builder_free(b);
}

static int fixture_setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	if (!fx)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/test_nss.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	snprintf(fx->path, sizeof(fx->path), "%s/nss.cache", fx->dir);
	sample_publish(fx->path);
	setenv("MID_NSS_CACHE", fx->path, 1);
	*state = fx;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *fx = *state;
	DIR *d = opendir(fx->dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char p[600];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static enum nss_status pwnam(const char *name, struct passwd *pw, int *err)
{
	static char buffer[1024];

	return module.getpwnam_r(name, pw, buffer, sizeof(buffer), err);
}

static enum nss_status grnam(const char *name, struct group *gr, int *err)
{
	static char buffer[1024];

	return module.getgrnam_r(name, gr, buffer, sizeof(buffer), err);
}

static size_t open_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* ---- passwd ---- */

static void test_getpwnam_hit(void **state)
{
	struct passwd pw;
	int err = 0;

	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_name, "alice");
	assert_string_equal(pw.pw_passwd, "x");
	assert_int_equal(pw.pw_uid, 60001);
	assert_int_equal(pw.pw_gid, 60001);
	assert_string_equal(pw.pw_gecos, "Alice Ephemeral");
	assert_string_equal(pw.pw_dir, "/home/alice");
	assert_string_equal(pw.pw_shell, "/bin/bash");
}

static void test_getpwnam_miss(void **state)
{
	struct passwd pw = {.pw_name = "sentinel"};
	int err = 0;

	assert_int_equal(pwnam("mallory", &pw, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_string_equal(pw.pw_name, "sentinel");
}

static void test_getpwnam_expired(void **state)
{
	struct passwd pw;
	int err = 0;

	assert_int_equal(pwnam("old", &pw, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
}

static void test_getpwnam_rejected_names(void **state)
{
	char long_name[MID_CACHE_NAME_MAX + 2];
	struct passwd pw;
	int err = 0;

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';

	assert_int_equal(pwnam(NULL, &pw, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_int_equal(pwnam("", &pw, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(pwnam(long_name, &pw, &err), NSS_STATUS_NOTFOUND);
}

static void test_getpwnam_longest_name(void **state)
{
	struct fixture *fx = *state;
	struct mid_cache_builder *b = NULL;
	char name[MID_CACHE_NAME_MAX + 1];
	struct passwd pw;
	int err = 0;

	memset(name, 'n', MID_CACHE_NAME_MAX);
	name[MID_CACHE_NAME_MAX] = '\0';
	assert_int_equal(mid_cache_builder_new(&b), 0);
	assert_int_equal(mid_cache_builder_add_user(b, name, 60009, 60009, NULL, "/", "/bin/sh",
						    time(NULL) + 60),
			 0);
	assert_int_equal(mid_cache_builder_publish(b, fx->path, 2, time(NULL)), 0);
	mid_cache_builder_free(b);

	assert_int_equal(pwnam(name, &pw, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(pw.pw_uid, 60009);
}

static void test_getpwnam_buffer_too_small(void **state)
{
	/* alice, x, Alice Ephemeral, /home/alice and /bin/bash with NULs. */
	const size_t needed = 6 + 2 + 16 + 12 + 10;
	char buffer[64];
	struct passwd pw = {.pw_name = "sentinel"};
	int err = 0;

	for (size_t size = 0; size < needed; size++) {
		err = 0;
		assert_int_equal(module.getpwnam_r("alice", &pw, buffer, size, &err),
				 NSS_STATUS_TRYAGAIN);
		assert_int_equal(err, ERANGE);
	}
	assert_string_equal(pw.pw_name, "sentinel");

	assert_int_equal(module.getpwnam_r("alice", &pw, buffer, needed, &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_shell, "/bin/bash");
}

static void test_getpwuid(void **state)
{
	char buffer[1024];
	struct passwd pw;
	int err = 0;

	assert_int_equal(module.getpwuid_r(60002, &pw, buffer, sizeof(buffer), &err),
			 NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_name, "bob");
	assert_int_equal(pw.pw_uid, 60002);
	assert_string_equal(pw.pw_gecos, "");

	assert_int_equal(module.getpwuid_r(0, &pw, buffer, sizeof(buffer), &err),
			 NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_int_equal(module.getpwuid_r(60003, &pw, buffer, sizeof(buffer), &err),
			 NSS_STATUS_NOTFOUND);
	assert_int_equal(module.getpwuid_r(60002, &pw, buffer, 4, &err), NSS_STATUS_TRYAGAIN);
	assert_int_equal(err, ERANGE);
}

/* ---- group ---- */

static void test_getgrnam(void **state)
{
	struct group gr = {.gr_name = "sentinel"};
	int err = 0;

	assert_int_equal(grnam("alice", &gr, &err), NSS_STATUS_SUCCESS);
	assert_string_equal(gr.gr_name, "alice");
	assert_string_equal(gr.gr_passwd, "x");
	assert_int_equal(gr.gr_gid, 60001);
	assert_non_null(gr.gr_mem);
	assert_null(gr.gr_mem[0]);

	gr.gr_name = "sentinel";
	assert_int_equal(grnam("wheel", &gr, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_int_equal(grnam("old", &gr, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(grnam("", &gr, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(grnam(NULL, &gr, &err), NSS_STATUS_NOTFOUND);
	assert_string_equal(gr.gr_name, "sentinel");
}

static void test_getgrgid(void **state)
{
	char buffer[1024];
	struct group gr;
	int err = 0;

	assert_int_equal(module.getgrgid_r(60002, &gr, buffer, sizeof(buffer), &err),
			 NSS_STATUS_SUCCESS);
	assert_string_equal(gr.gr_name, "bob");
	assert_null(gr.gr_mem[0]);
	assert_int_equal(module.getgrgid_r(0, &gr, buffer, sizeof(buffer), &err),
			 NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_int_equal(module.getgrgid_r(60003, &gr, buffer, sizeof(buffer), &err),
			 NSS_STATUS_NOTFOUND);
}

static void test_getgrnam_buffer_too_small(void **state)
{
	/* The member list, then "alice" and "x" with their NULs. */
	const size_t needed = sizeof(char *) + 6 + 2;
	char *aligned[16];
	char *buffer = (char *)aligned;
	struct group gr;
	int err = 0;

	for (size_t size = 0; size < needed; size++) {
		err = 0;
		assert_int_equal(module.getgrnam_r("alice", &gr, buffer, size, &err),
				 NSS_STATUS_TRYAGAIN);
		assert_int_equal(err, ERANGE);
	}
	assert_int_equal(module.getgrnam_r("alice", &gr, buffer, needed, &err), NSS_STATUS_SUCCESS);

	/* A misaligned buffer costs padding before the member list. */
	assert_int_equal(module.getgrnam_r("alice", &gr, buffer + 1, needed, &err),
			 NSS_STATUS_TRYAGAIN);
	assert_int_equal(module.getgrnam_r("alice", &gr, buffer + 1, needed + sizeof(char *), &err),
			 NSS_STATUS_SUCCESS);
	assert_int_equal((uintptr_t)gr.gr_mem % sizeof(char *), 0);
	assert_null(gr.gr_mem[0]);
	assert_string_equal(gr.gr_name, "alice");
}

/* ---- enumeration ---- */

static void test_getpwent(void **state)
{
	char buffer[1024];
	struct passwd pw;
	int err = 0;

	assert_int_equal(module.setpwent(0), NSS_STATUS_SUCCESS);
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_name, "alice");
	/* old, expired, comes between alice and bob in the file. */
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_name, "bob");
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(module.endpwent(), NSS_STATUS_SUCCESS);

	assert_int_equal(module.setpwent(0), NSS_STATUS_SUCCESS);
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_name, "alice");
	assert_int_equal(module.endpwent(), NSS_STATUS_SUCCESS);
}

static void test_getpwent_retry_after_erange(void **state)
{
	char buffer[1024];
	struct passwd pw;
	int err = 0;

	assert_int_equal(module.setpwent(0), NSS_STATUS_SUCCESS);
	assert_int_equal(module.getpwent_r(&pw, buffer, 8, &err), NSS_STATUS_TRYAGAIN);
	assert_int_equal(err, ERANGE);
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	assert_string_equal(pw.pw_name, "alice");
	assert_int_equal(module.endpwent(), NSS_STATUS_SUCCESS);
}

static void test_getgrent(void **state)
{
	char buffer[1024];
	struct group gr;
	int err = 0;

	assert_int_equal(module.setgrent(0), NSS_STATUS_SUCCESS);
	assert_int_equal(module.getgrent_r(&gr, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	assert_string_equal(gr.gr_name, "alice");
	assert_int_equal(module.getgrent_r(&gr, buffer, 2, &err), NSS_STATUS_TRYAGAIN);
	assert_int_equal(err, ERANGE);
	assert_int_equal(module.getgrent_r(&gr, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	assert_string_equal(gr.gr_name, "bob");
	assert_null(gr.gr_mem[0]);
	assert_int_equal(module.getgrent_r(&gr, buffer, sizeof(buffer), &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(err, ENOENT);
	assert_int_equal(module.endgrent(), NSS_STATUS_SUCCESS);
}

/* ---- initgroups ---- */

static void test_initgroups_adds_nothing(void **state)
{
	long int start = 1;
	long int size = 4;
	gid_t *groups = calloc((size_t)size, sizeof(*groups));
	int err = 0;

	assert_non_null(groups);
	groups[0] = 60001;
	assert_int_equal(module.initgroups_dyn("alice", 60001, &start, &size, &groups, 0, &err),
			 NSS_STATUS_NOTFOUND);
	assert_int_equal(start, 1);
	assert_int_equal(size, 4);
	assert_int_equal(groups[0], 60001);
	assert_int_equal(module.initgroups_dyn("mallory", 100, &start, &size, &groups, 0, &err),
			 NSS_STATUS_NOTFOUND);
	assert_int_equal(start, 1);
	free(groups);
}

/* ---- cache file changes ---- */

static void test_missing_cache_unavailable(void **state)
{
	struct fixture *fx = *state;
	char path[400];
	char buffer[1024];
	struct passwd pw;
	struct group gr;
	int err = 0;

	snprintf(path, sizeof(path), "%s/other.cache", fx->dir);
	setenv("MID_NSS_CACHE", path, 1);

	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_UNAVAIL);
	assert_int_equal(err, ENOENT);
	err = 0;
	assert_int_equal(module.getpwuid_r(60001, &pw, buffer, sizeof(buffer), &err),
			 NSS_STATUS_UNAVAIL);
	assert_int_equal(err, ENOENT);
	assert_int_equal(grnam("alice", &gr, &err), NSS_STATUS_UNAVAIL);
	assert_int_equal(module.getgrgid_r(60001, &gr, buffer, sizeof(buffer), &err),
			 NSS_STATUS_UNAVAIL);
	assert_int_equal(module.setpwent(0), NSS_STATUS_UNAVAIL);
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_UNAVAIL);
	assert_int_equal(module.setgrent(0), NSS_STATUS_UNAVAIL);
	assert_int_equal(module.getgrent_r(&gr, buffer, sizeof(buffer), &err), NSS_STATUS_UNAVAIL);

	/* A failed open is not remembered, so the cache counts once it exists. */
	sample_publish(path);
	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_SUCCESS);
}

static void test_corrupt_cache_unavailable(void **state)
{
	struct fixture *fx = *state;
	struct passwd pw;
	int err = 0;
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/corrupt.cache", fx->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "alice:x:60001:60001::/:/bin/sh\n", 31), 31);
	close(fd);
	setenv("MID_NSS_CACHE", path, 1);

	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_UNAVAIL);
	assert_int_equal(err, ENOENT);
}

static void test_cache_path_change(void **state)
{
	struct fixture *fx = *state;
	char path[400];
	struct passwd pw;
	int err = 0;

	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_SUCCESS);

	snprintf(path, sizeof(path), "%s/other.cache", fx->dir);
	successor_publish(path);
	setenv("MID_NSS_CACHE", path, 1);
	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(pwnam("carol", &pw, &err), NSS_STATUS_SUCCESS);
}

static void test_reopen_after_publish(void **state)
{
	struct fixture *fx = *state;
	struct passwd pw;
	struct group gr;
	int err = 0;

	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(pwnam("carol", &pw, &err), NSS_STATUS_NOTFOUND);

	/* The stale flag takes effect on the very next call. */
	successor_publish(fx->path);
	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(pwnam("carol", &pw, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(grnam("carol", &gr, &err), NSS_STATUS_SUCCESS);
}

static void test_reopen_after_bare_rename(void **state)
{
	struct fixture *fx = *state;
	char side[400];
	struct passwd pw;
	int err = 0;
	enum nss_status status = NSS_STATUS_SUCCESS;

	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_SUCCESS);

	/* This is a writer that died between the rename and marking the old
	 * file. Only the once-a-second inode check can notice the new file. */
	snprintf(side, sizeof(side), "%s/side.cache", fx->dir);
	successor_publish(side);
	assert_int_equal(rename(side, fx->path), 0);

	for (int i = 0; i < 30 && status == NSS_STATUS_SUCCESS; i++) {
		struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};

		status = pwnam("alice", &pw, &err);
		if (status == NSS_STATUS_SUCCESS)
			nanosleep(&pause, NULL);
	}
	assert_int_equal(status, NSS_STATUS_NOTFOUND);
	assert_int_equal(pwnam("carol", &pw, &err), NSS_STATUS_SUCCESS);
}

static void test_no_descriptor_left_open(void **state)
{
	struct fixture *fx = *state;
	size_t before = open_fd_count();
	char buffer[1024];
	char missing[400];
	struct passwd pw;
	struct group gr;
	int err = 0;

	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(pwnam("mallory", &pw, &err), NSS_STATUS_NOTFOUND);
	assert_int_equal(module.getpwuid_r(60001, &pw, buffer, sizeof(buffer), &err),
			 NSS_STATUS_SUCCESS);
	assert_int_equal(grnam("alice", &gr, &err), NSS_STATUS_SUCCESS);
	assert_int_equal(module.setpwent(0), NSS_STATUS_SUCCESS);
	assert_int_equal(module.getpwent_r(&pw, buffer, sizeof(buffer), &err), NSS_STATUS_SUCCESS);
	assert_int_equal(module.endpwent(), NSS_STATUS_SUCCESS);
	successor_publish(fx->path);
	assert_int_equal(pwnam("carol", &pw, &err), NSS_STATUS_SUCCESS);

	snprintf(missing, sizeof(missing), "%s/missing.cache", fx->dir);
	setenv("MID_NSS_CACHE", missing, 1);
	assert_int_equal(pwnam("carol", &pw, &err), NSS_STATUS_UNAVAIL);

	assert_int_equal(open_fd_count(), before);
}

/* ---- processes and threads ---- */

static void test_lookup_in_forked_child(void **state)
{
	struct passwd pw;
	int err = 0;
	int status;
	pid_t pid;

	assert_int_equal(pwnam("alice", &pw, &err), NSS_STATUS_SUCCESS);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(pwnam("bob", &pw, &err) == NSS_STATUS_SUCCESS ? 0 : 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

struct hammer {
	const bool *stop;
	long lookups;
	long failures;
};

static void *lookups_run(void *arg)
{
	struct hammer *h = arg;

	while (!__atomic_load_n(h->stop, __ATOMIC_RELAXED)) {
		char buffer[1024];
		struct passwd pw;
		int err = 0;

		if (module.getpwnam_r("alice", &pw, buffer, sizeof(buffer), &err) !=
			NSS_STATUS_SUCCESS ||
		    strcmp(pw.pw_dir, "/home/alice") != 0)
			h->failures++;
		h->lookups++;
	}
	return NULL;
}

static void test_lookups_during_publish(void **state)
{
	struct fixture *fx = *state;
	struct hammer hammers[4];
	pthread_t threads[4];
	bool stop = false;

	/* Every cache published here lists alice, so every lookup must find
	 * her, whichever file it reads and however often the map changes. */
	for (size_t i = 0; i < MID_ELEMENTSOF(threads); i++) {
		hammers[i] = (struct hammer){.stop = &stop};
		assert_int_equal(pthread_create(&threads[i], NULL, lookups_run, &hammers[i]), 0);
	}
	for (int i = 0; i < 50; i++)
		sample_publish(fx->path);
	__atomic_store_n(&stop, true, __ATOMIC_RELAXED);

	for (size_t i = 0; i < MID_ELEMENTSOF(threads); i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_true(hammers[i].lookups > 0);
		assert_int_equal(hammers[i].failures, 0);
	}
}

#define FIXTURE_TEST(f) cmocka_unit_test_setup_teardown(f, fixture_setup, fixture_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    FIXTURE_TEST(test_getpwnam_hit),
	    FIXTURE_TEST(test_getpwnam_miss),
	    FIXTURE_TEST(test_getpwnam_expired),
	    FIXTURE_TEST(test_getpwnam_rejected_names),
	    FIXTURE_TEST(test_getpwnam_longest_name),
	    FIXTURE_TEST(test_getpwnam_buffer_too_small),
	    FIXTURE_TEST(test_getpwuid),
	    FIXTURE_TEST(test_getgrnam),
	    FIXTURE_TEST(test_getgrgid),
	    FIXTURE_TEST(test_getgrnam_buffer_too_small),
	    FIXTURE_TEST(test_getpwent),
	    FIXTURE_TEST(test_getpwent_retry_after_erange),
	    FIXTURE_TEST(test_getgrent),
	    FIXTURE_TEST(test_initgroups_adds_nothing),
	    FIXTURE_TEST(test_missing_cache_unavailable),
	    FIXTURE_TEST(test_corrupt_cache_unavailable),
	    FIXTURE_TEST(test_cache_path_change),
	    FIXTURE_TEST(test_reopen_after_publish),
	    FIXTURE_TEST(test_reopen_after_bare_rename),
	    FIXTURE_TEST(test_no_descriptor_left_open),
	    FIXTURE_TEST(test_lookup_in_forked_child),
	    FIXTURE_TEST(test_lookups_during_publish),
	};

	return cmocka_run_group_tests(tests, module_load, module_unload);
}
