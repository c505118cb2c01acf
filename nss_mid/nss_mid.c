/* libnss_mid: the NSS module that lists mid's ephemeral accounts and their
 * primary groups from the cache mid-agentd publishes. It runs inside every
 * process that resolves a user, so it logs nothing, keeps no descriptor
 * open between calls and never contacts the agent. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <nss.h>
#include <pthread.h>
#include <pwd.h>
#include <stdalign.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache.h"

MID_EXPORT nss_getpwnam_r _nss_mid_getpwnam_r;
MID_EXPORT nss_getpwuid_r _nss_mid_getpwuid_r;
MID_EXPORT nss_setpwent _nss_mid_setpwent;
MID_EXPORT nss_getpwent_r _nss_mid_getpwent_r;
MID_EXPORT nss_endpwent _nss_mid_endpwent;
MID_EXPORT nss_getgrnam_r _nss_mid_getgrnam_r;
MID_EXPORT nss_getgrgid_r _nss_mid_getgrgid_r;
MID_EXPORT nss_setgrent _nss_mid_setgrent;
MID_EXPORT nss_getgrent_r _nss_mid_getgrent_r;
MID_EXPORT nss_endgrent _nss_mid_endgrent;
MID_EXPORT nss_initgroups_dyn _nss_mid_initgroups_dyn;

/* An open mapping of the cache and what it was opened from. */
struct cache_slot {
	struct mid_cache cache; /* cache.map is NULL while closed */
	char path[PATH_MAX];	/* the path cache was opened from */
	int64_t checked_at;	/* realtime seconds of the last path and inode check */
	bool path_from_env;	/* MID_NSS_CACHE named the path */
};

/* Lookups use a mapping of the calling thread's own, so threads never wait
 * for each other: the pages are shared, only the mapping is per thread. A
 * thread's slot is freed, and its mapping closed, when the thread exits.
 * The module is linked with -z nodelete so that destructor never outlives
 * the code. */
static __thread struct cache_slot *thread_slot;
static pthread_key_t slot_key;
static bool slot_key_ready;

/* Enumeration keeps one position for the process, as glibc expects, and
 * uses its own mapping; every field below is used only with cache_lock
 * held. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_slot enum_slot;
static uint32_t next_user;  /* getpwent_r position */
static uint32_t next_group; /* getgrent_r position */

/* A fork while another thread holds cache_lock would leave the lock held
 * forever in the child, so fork waits for the lock and both sides release
 * it. glibc drops the handlers of a shared object when it is unloaded. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&cache_lock);
}

static void fork_release(void)
{
	pthread_mutex_unlock(&cache_lock);
}

static void slot_free(void *data)
{
	struct cache_slot *slot = data;

	mid_cache_close(&slot->cache);
	free(slot);
}

__attribute__((constructor)) static void nss_mid_init(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_release);
	slot_key_ready = pthread_key_create(&slot_key, slot_free) == 0;
}

/* Returns the calling thread's slot, made on first use, or NULL. */
static struct cache_slot *slot_of_thread(void)
{
	struct cache_slot *slot = thread_slot;

	if (slot)
		return slot;
	if (!slot_key_ready)
		return NULL;
	slot = calloc(1, sizeof(*slot));
	if (!slot)
		return NULL;
	if (pthread_setspecific(slot_key, slot) != 0) {
		free(slot);
		return NULL;
	}
	thread_slot = slot;
	return slot;
}

static const char *cache_path_get(void)
{
	/* secure_getenv returns NULL in setuid and setgid programs, so a
	 * caller cannot point them at a cache file of its own. */
	const char *path = secure_getenv("MID_NSS_CACHE");

	return path && *path ? path : MID_DEFAULT_CACHE;
}

/* The coarse clock is read from the vDSO at a fraction of the cost of the
 * precise one. It lags by at most one scheduler tick (a few milliseconds),
 * so a record may stay visible that long past its expiry second. */
static int64_t realtime_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}

/* Makes slot map the current file at the cache path. The stale flag, set
 * by the writer right after it renames a new file in place, is read on
 * every call. Once a second the inode is compared too, which catches a
 * writer that died between rename and flag. Reading the environment
 * scans all of it, so the default path is taken as settled for that
 * second as well; a path set by MID_NSS_CACHE is read on every call. A
 * failed open is not remembered, so the next call tries again. Returns 0
 * or -errno. */
static int slot_refresh(struct cache_slot *slot, int64_t now)
{
	const char *path = NULL;
	struct stat st;
	size_t len;
	int r;

	if (slot->cache.map && !mid_cache_is_stale(&slot->cache)) {
		if (slot->path_from_env) {
			path = cache_path_get();
			if (strcmp(path, slot->path) != 0)
				goto reopen;
		}
		if (now == slot->checked_at)
			return 0;
		if (!path)
			path = cache_path_get();
		if (strcmp(path, slot->path) == 0 && stat(path, &st) == 0 &&
		    st.st_dev == slot->cache.dev && st.st_ino == slot->cache.ino) {
			slot->checked_at = now;
			return 0;
		}
	}
reopen:
	if (!path)
		path = cache_path_get();
	mid_cache_close(&slot->cache);

	len = strlen(path);
	if (len >= sizeof(slot->path))
		return -ENAMETOOLONG;
	r = mid_cache_open(path, &slot->cache);
	if (r < 0)
		return r;
	memcpy(slot->path, path, len + 1);
	slot->path_from_env = strcmp(path, MID_DEFAULT_CACHE) != 0;
	slot->checked_at = now;
	return 0;
}

/* Returns the calling thread's up-to-date cache, or NULL with errno-style
 * status set through ret_error. */
static const struct mid_cache *thread_cache(int64_t now, int *ret_error)
{
	struct cache_slot *slot = slot_of_thread();
	int r;

	if (!slot) {
		*ret_error = -ENOMEM;
		return NULL;
	}
	r = slot_refresh(slot, now);
	if (r < 0) {
		*ret_error = r;
		return NULL;
	}
	return &slot->cache;
}

/* Without a cache, or with a corrupt one, the module cannot answer. ENOENT
 * makes the caller's getpwnam(3) report "not found", not an error. */
static enum nss_status status_unavailable(int *errnop)
{
	*errnop = ENOENT;
	return NSS_STATUS_UNAVAIL;
}

static enum nss_status status_not_found(int *errnop)
{
	*errnop = ENOENT;
	return NSS_STATUS_NOTFOUND;
}

static enum nss_status status_from_lookup(int r, int *errnop)
{
	if (r == -ENOENT)
		return status_not_found(errnop);
	return status_unavailable(errnop);
}

/* Longer names cannot be in the cache, so they are rejected before the
 * lock is taken. */
static bool name_is_plausible(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strnlen(name, MID_CACHE_NAME_MAX + 1);
	return len > 0 && len <= MID_CACHE_NAME_MAX;
}

/* The caller's buffer, which receives every string of the result. */
struct buffer {
	char *next;
	size_t left;
};

/* Returns the copy of s in the buffer, or NULL when it does not fit. */
static char *buffer_copy(struct buffer *buf, const char *s)
{
	size_t size = strlen(s) + 1;
	char *p = buf->next;

	if (size > buf->left)
		return NULL;
	memcpy(p, s, size);
	buf->next += size;
	buf->left -= size;
	return p;
}

static enum nss_status passwd_fill(const struct mid_cache_user_view *u, struct passwd *pw,
				   char *buffer, size_t buflen, int *errnop)
{
	struct buffer buf = {buffer, buflen};
	char *name = buffer_copy(&buf, u->name);
	char *passwd = buffer_copy(&buf, "x");
	char *gecos = buffer_copy(&buf, u->gecos);
	char *dir = buffer_copy(&buf, u->dir);
	char *shell = buffer_copy(&buf, u->shell);

	/* TRYAGAIN with ERANGE makes glibc call again with a larger buffer. */
	if (!name || !passwd || !gecos || !dir || !shell) {
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}

	*pw = (struct passwd){
	    .pw_name = name,
	    .pw_passwd = passwd,
	    .pw_uid = u->uid,
	    .pw_gid = u->gid,
	    .pw_gecos = gecos,
	    .pw_dir = dir,
	    .pw_shell = shell,
	};
	return NSS_STATUS_SUCCESS;
}

/* Fills gr with an empty member list, because an ephemeral account belongs
 * only to its primary group, which its passwd entry already names. */
static enum nss_status group_fill(const struct mid_cache_group_view *g, struct group *gr,
				  char *buffer, size_t buflen, int *errnop)
{
	size_t pad = -(uintptr_t)buffer & (alignof(char *) - 1);
	struct buffer buf;
	char **members;
	char *name;
	char *passwd;

	if (buflen < pad + sizeof(char *)) {
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}
	members = (char **)(void *)(buffer + pad);
	buf = (struct buffer){buffer + pad + sizeof(char *), buflen - pad - sizeof(char *)};

	name = buffer_copy(&buf, g->name);
	passwd = buffer_copy(&buf, "x");
	if (!name || !passwd) {
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}

	members[0] = NULL;
	*gr = (struct group){
	    .gr_name = name,
	    .gr_passwd = passwd,
	    .gr_gid = g->gid,
	    .gr_mem = members,
	};
	return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_mid_getpwnam_r(const char *name, struct passwd *result, char *buffer,
				    size_t buflen, int *errnop)
{
	struct mid_cache_user_view u;
	enum nss_status status;
	const struct mid_cache *cache;
	int64_t now = realtime_seconds();
	int r;

	if (!name_is_plausible(name))
		return status_not_found(errnop);

	cache = thread_cache(now, &r);
	if (!cache)
		return status_unavailable(errnop);
	r = mid_cache_find_user_by_name(cache, name, now, &u);
	if (r < 0)
		status = status_from_lookup(r, errnop);
	else
		status = passwd_fill(&u, result, buffer, buflen, errnop);
	return status;
}

enum nss_status _nss_mid_getpwuid_r(uid_t uid, struct passwd *result, char *buffer, size_t buflen,
				    int *errnop)
{
	struct mid_cache_user_view u;
	enum nss_status status;
	const struct mid_cache *cache;
	int64_t now = realtime_seconds();
	int r;

	cache = thread_cache(now, &r);
	if (!cache)
		return status_unavailable(errnop);
	r = mid_cache_find_user_by_uid(cache, uid, now, &u);
	if (r < 0)
		status = status_from_lookup(r, errnop);
	else
		status = passwd_fill(&u, result, buffer, buflen, errnop);
	return status;
}

/* NOTE: a getpwent_r or getgrent_r sequence continues by position in
 * whichever file is current, so a publish in the middle of an enumeration
 * can skip or repeat entries. */
enum nss_status _nss_mid_setpwent(MID_UNUSED int stayopen)
{
	int r;

	pthread_mutex_lock(&cache_lock);
	next_user = 0;
	r = slot_refresh(&enum_slot, realtime_seconds());
	pthread_mutex_unlock(&cache_lock);
	return r < 0 ? NSS_STATUS_UNAVAIL : NSS_STATUS_SUCCESS;
}

enum nss_status _nss_mid_getpwent_r(struct passwd *result, char *buffer, size_t buflen, int *errnop)
{
	struct mid_cache_user_view u;
	enum nss_status status;
	int64_t now = realtime_seconds();
	int r;

	pthread_mutex_lock(&cache_lock);
	r = slot_refresh(&enum_slot, realtime_seconds());
	if (r < 0) {
		status = status_unavailable(errnop);
		goto finish;
	}

	/* Expired records are skipped, as lookups hide them. The loop ends
	 * at the latest with -ERANGE past the last record. */
	for (;;) {
		r = mid_cache_user_at(&enum_slot.cache, next_user, now, &u);
		if (r != -ENOENT)
			break;
		next_user++;
	}

	if (r == -ERANGE)
		status = status_not_found(errnop);
	else if (r < 0)
		status = status_unavailable(errnop);
	else {
		/* The position moves on only on success, so that the retry
		 * with a larger buffer returns the same entry. */
		status = passwd_fill(&u, result, buffer, buflen, errnop);
		if (status == NSS_STATUS_SUCCESS)
			next_user++;
	}

finish:
	pthread_mutex_unlock(&cache_lock);
	return status;
}

enum nss_status _nss_mid_endpwent(void)
{
	pthread_mutex_lock(&cache_lock);
	next_user = 0;
	pthread_mutex_unlock(&cache_lock);
	return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_mid_getgrnam_r(const char *name, struct group *result, char *buffer,
				    size_t buflen, int *errnop)
{
	struct mid_cache_group_view g;
	enum nss_status status;
	const struct mid_cache *cache;
	int64_t now = realtime_seconds();
	int r;

	if (!name_is_plausible(name))
		return status_not_found(errnop);

	cache = thread_cache(now, &r);
	if (!cache)
		return status_unavailable(errnop);
	r = mid_cache_find_group_by_name(cache, name, now, &g);
	if (r < 0)
		status = status_from_lookup(r, errnop);
	else
		status = group_fill(&g, result, buffer, buflen, errnop);
	return status;
}

enum nss_status _nss_mid_getgrgid_r(gid_t gid, struct group *result, char *buffer, size_t buflen,
				    int *errnop)
{
	struct mid_cache_group_view g;
	enum nss_status status;
	const struct mid_cache *cache;
	int64_t now = realtime_seconds();
	int r;

	cache = thread_cache(now, &r);
	if (!cache)
		return status_unavailable(errnop);
	r = mid_cache_find_group_by_gid(cache, gid, now, &g);
	if (r < 0)
		status = status_from_lookup(r, errnop);
	else
		status = group_fill(&g, result, buffer, buflen, errnop);
	return status;
}

enum nss_status _nss_mid_setgrent(MID_UNUSED int stayopen)
{
	int r;

	pthread_mutex_lock(&cache_lock);
	next_group = 0;
	r = slot_refresh(&enum_slot, realtime_seconds());
	pthread_mutex_unlock(&cache_lock);
	return r < 0 ? NSS_STATUS_UNAVAIL : NSS_STATUS_SUCCESS;
}

enum nss_status _nss_mid_getgrent_r(struct group *result, char *buffer, size_t buflen, int *errnop)
{
	struct mid_cache_group_view g;
	enum nss_status status;
	int64_t now = realtime_seconds();
	int r;

	pthread_mutex_lock(&cache_lock);
	r = slot_refresh(&enum_slot, realtime_seconds());
	if (r < 0) {
		status = status_unavailable(errnop);
		goto finish;
	}

	for (;;) {
		r = mid_cache_group_at(&enum_slot.cache, next_group, now, &g);
		if (r != -ENOENT)
			break;
		next_group++;
	}

	if (r == -ERANGE)
		status = status_not_found(errnop);
	else if (r < 0)
		status = status_unavailable(errnop);
	else {
		status = group_fill(&g, result, buffer, buflen, errnop);
		if (status == NSS_STATUS_SUCCESS)
			next_group++;
	}

finish:
	pthread_mutex_unlock(&cache_lock);
	return status;
}

enum nss_status _nss_mid_endgrent(void)
{
	pthread_mutex_lock(&cache_lock);
	next_group = 0;
	pthread_mutex_unlock(&cache_lock);
	return NSS_STATUS_SUCCESS;
}

/* Adds no group and so returns NOTFOUND, as glibc's own nss_files does
 * when it adds none. An ephemeral account is in no group but its primary
 * one, which glibc passes as `group` and adds itself. SUCCESS would also
 * end the search early under an "initgroups:" line in nsswitch.conf, and
 * hide groups that later services list for the user. */
enum nss_status _nss_mid_initgroups_dyn(MID_UNUSED const char *user, MID_UNUSED gid_t group,
					MID_UNUSED long int *start, MID_UNUSED long int *size,
					MID_UNUSED gid_t **groupsp, MID_UNUSED long int limit,
					MID_UNUSED int *errnop)
{
	return NSS_STATUS_NOTFOUND;
}
