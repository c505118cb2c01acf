/* Reading, verifying and signing the audit log (root only), and its
 * retention. The records themselves are written by store_audit_append. */
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "log.h"
#include "names.h"

#define SIGN_KEY_NAME "audit-sign.key"
#define SIGN_PUBLIC_NAME "audit-sign.pub"
/* Signed message: this context, then the 32-byte digest. The context keeps
 * an export signature from being valid for any other use of the key. */
#define SIGN_CONTEXT "mid-audit-export-v1"

/* The host's audit signing key, loaded or created on the first AUDIT_SIGN
 * and kept for the life of the process. */
static uint8_t *sign_secret; /* sodium_malloc'd, read-only once loaded */
static uint8_t sign_public[crypto_sign_PUBLICKEYBYTES];

static uint64_t retention_of(void *userdata)
{
	const struct agent *a = userdata;

	return a->policy ? a->policy->audit_retention : 0;
}

void audit_free(struct agent *a)
{
	if (sign_secret)
		sodium_free(sign_secret);
	sign_secret = NULL;
}

int audit_init(struct agent *a)
{
	uint64_t retention = a->policy->audit_retention, pruned = 0;
	int r;

	store_audit_set_retention(a->store, retention_of, a);
	if (retention == 0)
		return 0;

	/* A failed prune must not keep the agent from serving credentials;
	 * store_audit_append tries again later. */
	r = store_audit_prune(a->store, now_realtime(), retention, &pruned);
	if (r < 0)
		log_error("Failed to prune old audit records at start: %s", strerror(-r));
	else if (pruned > 0)
		log_info("Pruned %llu audit records older than audit_retention (%llu s)",
			 (unsigned long long)pruned, (unsigned long long)retention);
	return 0;
}

static int on_audit_row(const struct audit_row *row, void *userdata)
{
	struct mid_response *resp = userdata;

	if (resp->count >= MID_AUDIT_PAGE)
		return 0;
	resp->audit[resp->count++] = row->info;
	return 0;
}

static void handle_audit(struct agent *a, const struct mid_request *req, struct mid_response *resp)
{
	int r;

	if (req->account[0] && !name_is_valid(req->account)) {
		reply(resp, MID_ERR_INVALID, "invalid account name");
		return;
	}
	if (req->since < 0 || req->until < 0) {
		reply(resp, MID_ERR_INVALID, "invalid time range: times are seconds since the Epoch");
		return;
	}
	if (req->since && req->until && req->since >= req->until) {
		reply(resp, MID_ERR_INVALID, "invalid time range: since must be before until");
		return;
	}

	r = store_audit_query(a->store, req->since, req->until, req->account, req->offset,
			      MID_AUDIT_PAGE, on_audit_row, resp, &resp->total);
	if (r < 0) {
		resp->count = 0;
		reply_store_error(resp, r);
		return;
	}
	reply(resp, MID_OK, "%u records", resp->total);
}

static void handle_verify(struct agent *a, struct mid_response *resp)
{
	struct audit_check c;
	int r;

	r = store_audit_verify(a->store, &c);
	if (r < 0) {
		reply_store_error(resp, r);
		return;
	}
	if (c.problem == AUDIT_INTACT) {
		if (c.checked == 0)
			snprintf(resp->detail, sizeof(resp->detail),
				 "The audit log is empty: 0 records checked.\n");
		else
			snprintf(resp->detail, sizeof(resp->detail),
				 "Checked %llu audit records, seq %lld to %lld: the chain is "
				 "intact.\n",
				 (unsigned long long)c.checked, (long long)c.first_seq,
				 (long long)c.last_seq);
		reply(resp, MID_OK, "intact");
		return;
	}

	log_error("Audit chain verification failed at record %lld (%s): %s",
		  (long long)c.broken_seq, audit_problem_to_string(c.problem), c.what);
	snprintf(resp->detail, sizeof(resp->detail),
		 "Checked %llu audit records before the first broken one.\n"
		 "First broken record: seq %lld (%s): %s.\n",
		 (unsigned long long)c.checked, (long long)c.broken_seq,
		 audit_problem_to_string(c.problem), c.what);
	reply(resp, MID_OK, "broken");
}

/* Refuses a key file that someone other than the agent's owner could read
 * or replace. */
static int sign_key_check_file(int fd, const char *path)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		log_error("Refusing audit signing key %s: it must be a regular file owned by UID "
			  "%u with mode 0600 (it has mode %04o and owner %u)",
			  path, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777),
			  (unsigned)st.st_uid);
		return -EPERM;
	}
	return 0;
}

static int sign_key_read(int fd, const char *path, uint8_t *secret)
{
	ssize_t n;
	int r;

	r = sign_key_check_file(fd, path);
	if (r < 0)
		return r;
	n = read(fd, secret, crypto_sign_SECRETKEYBYTES);
	if (n != crypto_sign_SECRETKEYBYTES) {
		log_error("Audit signing key %s is damaged: expected %d bytes; restore it from a "
			  "backup, or remove it to make a new key (exports signed with the old "
			  "key then need the old public key to verify)",
			  path, crypto_sign_SECRETKEYBYTES);
		return -EBADMSG;
	}
	crypto_sign_ed25519_sk_to_pk(sign_public, secret);
	return 0;
}

/* Writes the public key as hex for administrators to copy off the host;
 * the agent itself never reads it back. */
static void sign_public_write(const struct agent *a)
{
	_cleanup_free_ char *path = NULL, *tmp = NULL;
	char hex[crypto_sign_PUBLICKEYBYTES * 2 + 1];
	FILE *f;
	int fd;

	if (asprintf(&path, "%s/" SIGN_PUBLIC_NAME, a->state_dir) < 0 ||
	    asprintf(&tmp, "%s.tmp", path) < 0)
		return;
	sodium_bin2hex(hex, sizeof(hex), sign_public, sizeof(sign_public));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		log_warning("Failed to write %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "%s\n", hex);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		log_warning("Failed to write %s: %s", path, strerror(errno));
		(void)unlink(tmp);
	}
}

static int sign_key_create(const struct agent *a, const char *path, uint8_t *secret)
{
	_cleanup_close_ int fd = -1, dir_fd = -1;
	char hex[crypto_sign_PUBLICKEYBYTES * 2 + 1];

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	crypto_sign_keypair(sign_public, secret);
	if (write(fd, secret, crypto_sign_SECRETKEYBYTES) != crypto_sign_SECRETKEYBYTES ||
	    fsync(fd) < 0) {
		int r = errno ? -errno : -EIO;

		(void)unlink(path);
		return r;
	}
	dir_fd = open(a->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd >= 0)
		(void)fsync(dir_fd);

	sign_public_write(a);
	sodium_bin2hex(hex, sizeof(hex), sign_public, sizeof(sign_public));
	log_info("Created audit signing key %s with public key %s", path, hex);
	return 0;
}

/* Loads the signing key, creating it on first use. */
static int sign_key_load(const struct agent *a)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t *secret;
	int r;

	if (sign_secret)
		return 0;
	if (asprintf(&path, "%s/" SIGN_KEY_NAME, a->state_dir) < 0)
		return -ENOMEM;
	secret = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	if (!secret)
		return -ENOMEM;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0)
		r = sign_key_read(fd, path, secret);
	else if (errno == ENOENT)
		r = sign_key_create(a, path, secret);
	else
		r = -errno;
	if (r < 0) {
		if (r != -EPERM && r != -EBADMSG)
			log_error("Failed to read or create the audit signing key %s: %s", path,
				  strerror(-r));
		sodium_free(secret);
		return r;
	}
	sodium_mprotect_readonly(secret);
	sign_secret = secret;
	return 0;
}

static void handle_sign(struct agent *a, const struct peer *peer, const struct mid_request *req,
			struct mid_response *resp)
{
	uint8_t digest[crypto_generichash_BYTES], message[sizeof(SIGN_CONTEXT) - 1 + sizeof(digest)];
	uint8_t signature[crypto_sign_BYTES];
	char signature_hex[sizeof(signature) * 2 + 1], public_hex[sizeof(sign_public) * 2 + 1];
	char detail[MID_TEXT_MAX + 1];
	size_t hex_len = strnlen(req->credential, sizeof(req->credential));
	int64_t now = now_realtime();
	int r;

	if (hex_len != sizeof(digest) * 2 ||
	    sodium_hex2bin(digest, sizeof(digest), req->credential, hex_len, NULL, NULL, NULL) != 0) {
		reply(resp, MID_ERR_INVALID,
		      "invalid digest: give the BLAKE2b-256 digest as %zu hex digits",
		      sizeof(digest) * 2);
		return;
	}
	r = sign_key_load(a);
	if (r < 0) {
		reply(resp, MID_ERR_INTERNAL,
		      "the audit signing key could not be loaded (%s); see the agent's log",
		      strerror(-r));
		return;
	}

	memcpy(message, SIGN_CONTEXT, sizeof(SIGN_CONTEXT) - 1);
	memcpy(message + sizeof(SIGN_CONTEXT) - 1, digest, sizeof(digest));
	crypto_sign_detached(signature, NULL, message, sizeof(message), sign_secret);
	sodium_bin2hex(signature_hex, sizeof(signature_hex), signature, sizeof(signature));
	sodium_bin2hex(public_hex, sizeof(public_hex), sign_public, sizeof(sign_public));

	/* The signed digest enters the chain, so the live log shows what was
	 * exported and when. A full disk does not block an export. */
	snprintf(detail, sizeof(detail), "digest=%.64s", req->credential);
	r = store_begin(a->store);
	if (r == 0)
		r = store_audit_append(a->store, now,
				       &(struct audit_record){.event = "audit-sign",
							      .peer_uid = peer->uid,
							      .detail = detail});
	r = store_end(a->store, r);
	if (r < 0)
		log_error("Failed to record the signing of audit digest %.64s: %s", req->credential,
			  strerror(-r));

	snprintf(resp->detail, sizeof(resp->detail), "signature=%s\npublic_key=%s\n", signature_hex,
		 public_hex);
	reply(resp, MID_OK, "signed");
}

void audit_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		  struct mid_response *resp)
{
	if (peer->uid != 0) {
		reply(resp, MID_ERR_PERMISSION, "UID %u may not read the audit log; only root may",
		      (unsigned)peer->uid);
		return;
	}
	switch (req->type) {
	case MID_REQ_AUDIT:
		handle_audit(a, req, resp);
		break;
	case MID_REQ_AUDIT_VERIFY:
		handle_verify(a, resp);
		break;
	case MID_REQ_AUDIT_SIGN:
		handle_sign(a, peer, req, resp);
		break;
	default:
		reply(resp, MID_ERR_INVALID, "unknown audit request type %u", req->type);
		break;
	}
}
