/* mid-agentd: issues, verifies, renews, revokes and expires credentials
 * for machine accounts, and publishes the NSS cache. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "agent.h"
#include "log.h"
#include "token.h"

int64_t now_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: mid-agentd [OPTIONS]\n"
		"Issue and verify just-in-time credentials for machine accounts.\n\n"
		"  -c, --config FILE       policy file (default %s)\n"
		"  -s, --socket PATH       bind this socket unless systemd passes one (default %s)\n"
		"      --state-dir DIR     database and host key (default %s)\n"
		"      --runtime-dir DIR   NSS cache directory (default %s)\n"
		"  -f, --foreground        accepted for compatibility; the agent never forks\n"
		"      --check-config      check the policy file, print every error and exit\n"
		"  -d, --debug             log debug messages\n"
		"  -h, --help              show this help\n"
		"  -V, --version           show the version\n",
		MID_DEFAULT_CONFIG, MID_DEFAULT_SOCKET, MID_DEFAULT_STATE_DIR, MID_DEFAULT_RUNTIME_DIR);
}

/* Like sshd's StrictModes: a file or directory that someone other than
 * the agent's owner could write would let them change policy or state. */
int check_ownership(const char *path, bool want_dir)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int r = -errno;
		log_error("Failed to check %s: %s", path, strerror(-r));
		return r;
	}
	if (want_dir != !!S_ISDIR(st.st_mode)) {
		log_error("%s is not a %s", path, want_dir ? "directory" : "regular file");
		return -EINVAL;
	}
	if (st.st_uid != geteuid()) {
		log_error("Refusing %s: owned by UID %u, not %u; chown it to root", path,
			  (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		log_error("Refusing %s: writable by group or others (mode %04o); chmod go-w it",
			  path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* Creates path with exactly mode (whatever the umask) when it is missing. */
static int ensure_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0) {
		if (chmod(path, mode) < 0) {
			int r = -errno;
			log_error("Failed to set the mode of %s: %s", path, strerror(-r));
			return r;
		}
	} else if (errno != EEXIST) {
		int r = -errno;
		log_error("Failed to create directory %s: %s", path, strerror(-r));
		return r;
	}
	return check_ownership(path, true);
}

/* The state directory and host key hold secrets: nobody else may read them. */
static int check_private(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		log_error("Refusing %s: readable by group or others (mode %04o); chmod go= it", path,
			  (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* A publisher killed between writing and renaming leaves its temporary
 * file "nss.cache.XXXXXX" behind; nothing else ever reads one. */
static void remove_stale_temp_files(const char *runtime_dir)
{
	static const char prefix[] = MID_CACHE_FILE_NAME ".";
	_cleanup_close_ int dfd = -1;
	DIR *d;
	struct dirent *e;

	dfd = open(runtime_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	d = fdopendir(MID_TAKE_FD(dfd));
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, prefix, sizeof(prefix) - 1) == 0 &&
		    strlen(e->d_name) == sizeof(prefix) - 1 + 6)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

/* The host key makes the stored credential hashes useless without it. */
static int host_key_load(struct agent *a)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	ssize_t n;

	if (asprintf(&path, "%s/host.key", a->state_dir) < 0)
		return -ENOMEM;
	a->host_key = sodium_malloc(MID_HOST_KEY_BYTES);
	if (!a->host_key)
		return -ENOMEM;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			goto fail;
		randombytes_buf(a->host_key, MID_HOST_KEY_BYTES);
		if (write(fd, a->host_key, MID_HOST_KEY_BYTES) != MID_HOST_KEY_BYTES ||
		    fsync(fd) < 0) {
			(void)unlink(path);
			goto fail;
		}
		log_info("Created host key %s", path);
		sodium_mprotect_readonly(a->host_key);
		return 0;
	}
	if (fd < 0)
		goto fail;
	if (check_ownership(path, false) < 0 || check_private(path) < 0)
		return -EPERM;
	n = read(fd, a->host_key, MID_HOST_KEY_BYTES);
	if (n != MID_HOST_KEY_BYTES) {
		log_error("Host key %s is damaged: expected %d bytes; restore it from a backup, "
			  "or remove it to invalidate every credential",
			  path, MID_HOST_KEY_BYTES);
		return -EBADMSG;
	}
	sodium_mprotect_readonly(a->host_key);
	return 0;
fail:
	log_error("Failed to read or create the host key %s: %s", path, strerror(errno));
	return -errno;
}

static int check_config(const char *path)
{
	struct policy_errors errors = {0};
	struct policy *p = NULL;
	int r;

	r = policy_load(path, &p, &errors);
	for (size_t i = 0; i < errors.n; i++)
		fprintf(stderr, "%s\n", errors.lines[i]);
	if (r == 0) {
		printf("%s: OK (%zu accounts, %zu classes)\n", path, p->n_accounts, p->n_classes);
		policy_free(p);
	}
	policy_errors_clear(&errors);
	return r;
}

/* Revokes a live lease whose account or class the new policy no longer
 * names: nothing may go on working that the policy does not allow. */
static int on_reload_lease(const struct lease *l, void *userdata)
{
	struct agent *a = userdata;
	int64_t now = now_realtime();
	int r;

	if (rule_of_lease(a, &l->info))
		return 0;

	r = store_begin(a->store);
	if (r == 0)
		r = store_lease_set_state(a->store, l->info.lease, MID_LEASE_REVOKED, now);
	if (r == 0)
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = "revoke",
							      .account = l->info.account,
							      .lease = l->info.lease,
							      .peer_uid = -1,
							      .detail = "policy reload: no rule allows it"});
	r = store_end(a->store, r);
	if (r < 0) {
		log_error("Failed to revoke lease %s after a reload: %s", l->info.lease, strerror(-r));
		return 0;
	}
	log_event(LOG_NOTICE,
		  &(struct log_fields){.message_id = MID_MESSAGE_REVOKED,
				       .account = l->info.account,
				       .lease = l->info.lease,
				       .reason = "policy reload",
				       .peer_uid = -1},
		  "Revoked lease %s of account %s: the reloaded policy no longer allows it",
		  l->info.lease, l->info.account);
	sessions_on_lease_end(a, l, "revoked");
	if (l->info.class_name[0])
		accounts_on_lease_end(a, l);
	return 0;
}

int agent_reload(struct agent *a, const struct peer *peer, struct mid_response *resp)
{
	struct policy_errors errors = {0};
	struct policy *p = NULL;
	size_t pos = 0;
	int r;

	if (peer && peer->uid != 0) {
		reply(resp, MID_ERR_PERMISSION, "only root may reload the policy");
		return -EPERM;
	}
	r = check_ownership(a->config_path, false);
	if (r == 0)
		r = policy_load(a->config_path, &p, &errors);
	for (size_t i = 0; i < errors.n; i++) {
		log_error("%s", errors.lines[i]);
		if (resp && pos < sizeof(resp->detail)) {
			int w = snprintf(resp->detail + pos, sizeof(resp->detail) - pos, "%s\n",
					 errors.lines[i]);
			pos += w > 0 ? (size_t)w : 0;
		}
	}
	policy_errors_clear(&errors);
	if (r < 0) {
		log_error("Failed to load the policy %s; the previous policy stays in force",
			  a->config_path);
		if (resp)
			reply(resp, MID_ERR_INVALID,
			      "the policy %s is invalid and was not loaded; the previous policy stays in force (see the agent's log)",
			      a->config_path);
		return r;
	}

	policy_free(a->policy);
	a->policy = p;
	if (a->store) {
		if (store_foreach_live(a->store, on_reload_lease, a) < 0)
			log_error("Failed to check the live leases against the reloaded policy");
		cache_drop(a);
		(void)cache_publish(a);
		(void)expiry_schedule(a);
		r = store_begin(a->store);
		if (r == 0)
			r = store_audit_append(a->store, now_realtime(),
					       &(struct audit_record){
						       .event = "reload",
						       .peer_uid = peer ? (long long)peer->uid : -1,
						       .detail = a->config_path});
		r = store_end(a->store, r);
		if (r < 0)
			log_error("Failed to record the reload in the audit log: %s", strerror(-r));
		log_event(LOG_INFO,
			  &(struct log_fields){.message_id = MID_MESSAGE_RELOADED,
					       .peer_uid = peer ? (long)peer->uid : -1},
			  "Reloaded the policy %s", a->config_path);
	}
	if (resp)
		reply(resp, MID_OK, "reloaded %s: %zu accounts, %zu classes", a->config_path,
		      p->n_accounts, p->n_classes);
	return 0;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)agent_reload(userdata, NULL, NULL);
	return 0;
}

static int on_exit_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct agent *a = userdata;

	log_info("Received signal %u; stopping", si->ssi_signo);
	return sd_event_exit(a->event, 0);
}

/* Room for the agent's connection limit: raise the soft descriptor limit
 * to the hard one. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warning("Failed to raise the descriptor limit: %s", strerror(errno));
	}
}

static int agent_setup(struct agent *a)
{
	sigset_t mask;
	int r;

	raise_fd_limit();
	if (check_ownership(a->config_path, false) < 0)
		return -EPERM;
	r = agent_reload(a, NULL, NULL);
	if (r < 0)
		return r;
	r = ensure_dir(a->state_dir, 0700);
	if (r < 0)
		return r;
	r = check_private(a->state_dir);
	if (r < 0)
		return r;
	r = ensure_dir(a->runtime_dir, 0755);
	if (r < 0)
		return r;
	remove_stale_temp_files(a->runtime_dir);
	r = host_key_load(a);
	if (r < 0)
		return r;

	r = store_open(a->state_dir, &a->store);
	if (r == -EUCLEAN) {
		log_error("The state database in %s is corrupt; the agent will not start on it. "
			  "Restore state.db from a backup, or move state.db and state.id away to "
			  "start empty",
			  a->state_dir);
		return r;
	}
	if (r < 0) {
		log_error("Failed to open the state database in %s: %s", a->state_dir, strerror(-r));
		return r;
	}

	if ((r = lockout_init(a)) < 0 || (r = approvals_init(a)) < 0 ||
	    (r = sessions_init(a)) < 0 || (r = accounts_init(a)) < 0 || (r = audit_init(a)) < 0)
		return r;
	/* Checkpoints and periodic syncs run beside the requests; without the
	 * thread the database checkpoints inline, which only costs latency. */
	if (store_background_start(a->store) < 0)
		log_warning("Checkpoints of the state database run in the request loop");

	r = sd_event_default(&a->event);
	if (r < 0)
		return r;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((r = sd_event_add_signal(a->event, NULL, SIGTERM, on_exit_signal, a)) < 0 ||
	    (r = sd_event_add_signal(a->event, NULL, SIGINT, on_exit_signal, a)) < 0 ||
	    (r = sd_event_add_signal(a->event, NULL, SIGHUP, on_sighup, a)) < 0)
		return r;
	(void)sd_event_set_watchdog(a->event, true);

	r = server_listen(a);
	if (r < 0)
		return r;

	/* Leases that ended while the agent was stopped end now. */
	r = expiry_schedule(a);
	if (r < 0)
		return r;
	return cache_publish(a);
}

static void agent_free(struct agent *a)
{
	if (a->event)
		server_stop(a);
	sd_event_source_disable_unref(a->expiry_timer);
	sd_event_unref(a->event);
	audit_free(a);
	lockout_free(a);
	store_close(a->store);
	policy_free(a->policy);
	if (a->host_key)
		sodium_free(a->host_key);
	free(a->config_path);
	free(a->state_dir);
	free(a->runtime_dir);
	free(a->socket_path);
	free(a->cache_path);
	cache_drop(a);
}

enum {
	ARG_STATE_DIR = 0x100,
	ARG_RUNTIME_DIR,
	ARG_CHECK_CONFIG,
};

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'},
		{"socket", required_argument, NULL, 's'},
		{"state-dir", required_argument, NULL, ARG_STATE_DIR},
		{"runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR},
		{"foreground", no_argument, NULL, 'f'},
		{"check-config", no_argument, NULL, ARG_CHECK_CONFIG},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{},
	};
	const char *config = MID_DEFAULT_CONFIG, *socket_path = MID_DEFAULT_SOCKET;
	const char *state_dir = MID_DEFAULT_STATE_DIR, *runtime_dir = MID_DEFAULT_RUNTIME_DIR;
	struct agent a = {.listen_fd = -1};
	bool check_only = false, debug = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "c:s:fdhV", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 's':
			socket_path = optarg;
			break;
		case ARG_STATE_DIR:
			state_dir = optarg;
			break;
		case ARG_RUNTIME_DIR:
			runtime_dir = optarg;
			break;
		case 'f':
			break;
		case ARG_CHECK_CONFIG:
			check_only = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("mid-agentd %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mid-agentd: unexpected argument \"%s\"; see --help\n", argv[optind]);
		return 2;
	}

	if (check_only)
		return check_config(config) < 0 ? 1 : 0;

	log_setup(access("/run/systemd/journal/socket", W_OK) == 0 && !getenv("MID_LOG_STDERR"),
		  debug);
	if (sodium_init() < 0) {
		log_error("Failed to initialise libsodium");
		return 1;
	}

	a.started_at = now_realtime();
	a.config_path = strdup(config);
	a.state_dir = strdup(state_dir);
	a.runtime_dir = strdup(runtime_dir);
	a.socket_path = strdup(socket_path);
	if (!a.config_path || !a.state_dir || !a.runtime_dir || !a.socket_path ||
	    asprintf(&a.cache_path, "%s/%s", runtime_dir, MID_CACHE_FILE_NAME) < 0) {
		log_error("Out of memory");
		agent_free(&a);
		return 1;
	}

	/* Files the agent creates hold secrets unless it widens them itself
	 * (the socket, the runtime directory, the NSS cache). */
	umask(077);
	r = agent_setup(&a);
	if (r < 0) {
		log_error("Failed to start: %s", strerror(-r));
		agent_free(&a);
		return 1;
	}

	log_event(LOG_INFO, &(struct log_fields){.message_id = MID_MESSAGE_STARTED, .peer_uid = -1},
		  "Started mid-agentd %s with policy %s", PACKAGE_VERSION, a.config_path);
	(void)sd_notify(false, "READY=1\nSTATUS=Serving credentials");

	r = sd_event_loop(a.event);
	(void)sd_notify(false, "STOPPING=1");
	log_event(LOG_INFO, &(struct log_fields){.message_id = MID_MESSAGE_STOPPED, .peer_uid = -1},
		  "Stopped mid-agentd");
	agent_free(&a);
	return r < 0 ? 1 : 0;
}
