/* midctl audit, audit verify, audit export and report: reading the agent's
 * hash-chained audit log, checking it online or offline, and summing it up. */
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "midctl.h"
#include "names.h"

#define HASH_BYTES 32 /* BLAKE2b-256, as the agent chains records */
#define HASH_HEX (HASH_BYTES * 2 + 1)
#define CHECKPOINT_EVENT "checkpoint"
/* Must match SIGN_CONTEXT in agentd/audit.c: the agent signs this string
 * followed by the 32-byte digest. */
#define SIGN_CONTEXT "mid-audit-export-v1"
#define EXPORT_LINE_MAX 8192
#define EXPORT_ATTEMPTS 3

/* ---- record hashing, as the agent's store_audit_hash ---- */

static void hash_u32(crypto_generichash_state *h, uint32_t v)
{
	uint8_t b[4];

	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	crypto_generichash_update(h, b, sizeof(b));
}

static void hash_i64(crypto_generichash_state *h, int64_t v)
{
	uint64_t u = (uint64_t)v;
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(u >> (8 * i));
	crypto_generichash_update(h, b, sizeof(b));
}

static void hash_text(crypto_generichash_state *h, const char *text)
{
	size_t len = strlen(text);

	hash_u32(h, (uint32_t)len);
	if (len)
		crypto_generichash_update(h, (const uint8_t *)text, len);
}

/* NOTE: a copy of store_audit_hash in agentd/store.c, which midctl does
 * not link; the export test fails when the two differ. */
static void record_hash(const uint8_t prev[HASH_BYTES], const struct mid_audit_info *r,
			uint8_t ret[HASH_BYTES])
{
	crypto_generichash_state h;

	crypto_generichash_init(&h, NULL, 0, HASH_BYTES);
	crypto_generichash_update(&h, prev, HASH_BYTES);
	hash_i64(&h, r->seq);
	hash_i64(&h, r->at);
	hash_text(&h, r->event);
	hash_text(&h, r->account);
	hash_text(&h, r->lease);
	hash_i64(&h, r->peer_uid);
	hash_text(&h, r->detail);
	crypto_generichash_final(&h, ret, HASH_BYTES);
}

/* ---- JSON Lines ---- */

/* Writes s as a JSON string. Every byte outside printable ASCII is written
 * as \u00XX, so a line is ASCII and reads back to the same bytes. */
static void json_put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static void record_json(FILE *f, const struct mid_audit_info *r)
{
	char when[32];

	format_time(r->at, when, sizeof(when));
	fprintf(f, "{\"seq\":%lld,\"at\":%lld,\"time\":\"%s\",\"event\":", (long long)r->seq,
		(long long)r->at, when);
	json_put_string(f, r->event);
	fputs(",\"account\":", f);
	json_put_string(f, r->account);
	fputs(",\"lease\":", f);
	json_put_string(f, r->lease);
	fprintf(f, ",\"peer_uid\":%lld,\"detail\":", (long long)r->peer_uid);
	json_put_string(f, r->detail);
	fprintf(f, ",\"hash\":\"%s\"}\n", r->hash);
}

struct json_value {
	bool is_string;
	long long number;
	char text[MID_TEXT_MAX + 1];
};

typedef int (*json_field_cb)(const char *key, const struct json_value *v, void *userdata);

static const char *json_skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads a JSON string at p (after its opening quote) into out and returns
 * the position after the closing quote, or NULL when it is malformed or
 * longer than size - 1 bytes. This reader takes only what record_json
 * writes, so \u escapes above 0xff are rejected. */
static const char *json_read_string(const char *p, char *out, size_t size)
{
	size_t n = 0;

	for (;;) {
		unsigned char c = (unsigned char)*p++;
		unsigned v;

		if (c == '\0' || c < 0x20)
			return NULL;
		if (c == '"')
			break;
		if (c == '\\') {
			c = (unsigned char)*p++;
			switch (c) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'u':
				if (sscanf(p, "%4x", &v) != 1 || v == 0 || v > 0xff)
					return NULL;
				for (int i = 0; i < 4; i++)
					if (!((p[i] >= '0' && p[i] <= '9') ||
					      (p[i] >= 'a' && p[i] <= 'f') ||
					      (p[i] >= 'A' && p[i] <= 'F')))
						return NULL;
				p += 4;
				c = (unsigned char)v;
				break;
			default:
				return NULL;
			}
		}
		if (n + 1 >= size)
			return NULL;
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return p;
}

/* Parses one flat JSON object of string and integer members, calling cb
 * for each. Returns 0, -EBADMSG for malformed text, or cb's error. */
static int json_parse_object(const char *line, json_field_cb cb, void *userdata)
{
	const char *p = json_skip_space(line);
	char key[64];
	struct json_value v;
	int r;

	if (*p++ != '{')
		return -EBADMSG;
	p = json_skip_space(p);
	if (*p == '}')
		return *json_skip_space(p + 1) == '\0' || *json_skip_space(p + 1) == '\n' ? 0
											: -EBADMSG;
	for (;;) {
		p = json_skip_space(p);
		if (*p++ != '"')
			return -EBADMSG;
		p = json_read_string(p, key, sizeof(key));
		if (!p)
			return -EBADMSG;
		p = json_skip_space(p);
		if (*p++ != ':')
			return -EBADMSG;
		p = json_skip_space(p);
		memset(&v, 0, sizeof(v));
		if (*p == '"') {
			v.is_string = true;
			p = json_read_string(p + 1, v.text, sizeof(v.text));
			if (!p)
				return -EBADMSG;
		} else {
			char *end;

			errno = 0;
			v.number = strtoll(p, &end, 10);
			if (errno || end == p)
				return -EBADMSG;
			p = end;
		}
		r = cb(key, &v, userdata);
		if (r < 0)
			return r;
		p = json_skip_space(p);
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p++ != '}')
			return -EBADMSG;
		p = json_skip_space(p);
		return *p == '\0' || (*p == '\n' && p[1] == '\0') ? 0 : -EBADMSG;
	}
}

enum {
	FIELD_SEQ = 1u << 0,
	FIELD_AT = 1u << 1,
	FIELD_EVENT = 1u << 2,
	FIELD_ACCOUNT = 1u << 3,
	FIELD_LEASE = 1u << 4,
	FIELD_PEER = 1u << 5,
	FIELD_DETAIL = 1u << 6,
	FIELD_HASH = 1u << 7,
	FIELDS_RECORD = (1u << 8) - 1,
};

struct record_parse {
	struct mid_audit_info info;
	unsigned seen;
};

static int copy_string_field(const struct json_value *v, char *out, size_t size)
{
	if (!v->is_string || strlen(v->text) >= size)
		return -EBADMSG;
	strcpy(out, v->text);
	return 0;
}

static int on_record_field(const char *key, const struct json_value *v, void *userdata)
{
	struct record_parse *p = userdata;
	struct mid_audit_info *i = &p->info;

	if (strcmp(key, "seq") == 0 && !v->is_string) {
		i->seq = v->number;
		p->seen |= FIELD_SEQ;
	} else if (strcmp(key, "at") == 0 && !v->is_string) {
		i->at = v->number;
		p->seen |= FIELD_AT;
	} else if (strcmp(key, "peer_uid") == 0 && !v->is_string) {
		i->peer_uid = v->number;
		p->seen |= FIELD_PEER;
	} else if (strcmp(key, "event") == 0) {
		p->seen |= FIELD_EVENT;
		return copy_string_field(v, i->event, sizeof(i->event));
	} else if (strcmp(key, "account") == 0) {
		p->seen |= FIELD_ACCOUNT;
		return copy_string_field(v, i->account, sizeof(i->account));
	} else if (strcmp(key, "lease") == 0) {
		p->seen |= FIELD_LEASE;
		return copy_string_field(v, i->lease, sizeof(i->lease));
	} else if (strcmp(key, "detail") == 0) {
		p->seen |= FIELD_DETAIL;
		return copy_string_field(v, i->detail, sizeof(i->detail));
	} else if (strcmp(key, "hash") == 0) {
		p->seen |= FIELD_HASH;
		return copy_string_field(v, i->hash, sizeof(i->hash));
	} else if (strcmp(key, "time") != 0)
		return -EBADMSG;
	return 0;
}

/* ---- talking to the agent ---- */

/* Prints a text field with anything a terminal could act on replaced. */
static void put_printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
}

static void record_text(const struct mid_audit_info *r)
{
	char when[32], peer[24];

	format_time(r->at, when, sizeof(when));
	if (r->peer_uid < 0)
		snprintf(peer, sizeof(peer), "agent");
	else
		snprintf(peer, sizeof(peer), "%lld", (long long)r->peer_uid);
	printf("%-7lld %-20s %-14s ", (long long)r->seq, when, r->event);
	printf("%-20s %-16s %6s  ", r->account[0] ? r->account : "-",
	       r->lease[0] ? r->lease : "-", peer);
	put_printable(r->detail);
	putchar('\n');
}

typedef int (*record_cb)(const struct mid_audit_info *r, void *userdata);

/* Pages through the records that match req, oldest first, calling cb for
 * each. Returns 0 or an exit status (call has printed the reason). */
static int audit_fetch(const struct options *o, struct mid_request *req, record_cb cb,
		       void *userdata)
{
	struct mid_response *resp = response_new();
	int r = 0;

	req->type = MID_REQ_AUDIT;
	req->offset = 0;
	for (;;) {
		r = call(o, req, resp);
		if (r != 0)
			break;
		for (unsigned i = 0; i < resp->count && r == 0; i++)
			r = cb(&resp->audit[i], userdata);
		if (r != 0)
			break;
		req->offset += resp->count;
		if (resp->count == 0 || req->offset >= resp->total)
			break;
	}
	free(resp);
	return r;
}

static int on_list_record(const struct mid_audit_info *r, void *userdata)
{
	const struct options *o = userdata;

	if (o->json)
		record_json(stdout, r);
	else
		record_text(r);
	return 0;
}

static int parse_time_arg(const char *text, const char *what, int64_t *ret)
{
	if (parse_time(text, ret) < 0 || *ret < 0) {
		usage_error("invalid %s \"%s\": write 2026-03-01T12:00:00Z, 2026-03-01 or a "
			    "duration ago such as 24h",
			    what, text);
		return -EINVAL;
	}
	return 0;
}

static int cmd_audit_list(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"since", required_argument, NULL, 'S'},
		{"until", required_argument, NULL, 'U'},
		{"account", required_argument, NULL, 'A'},
		{},
	};
	struct mid_request req = {.type = MID_REQ_AUDIT};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 'S':
			if (parse_time_arg(optarg, "--since", &req.since) < 0)
				return EXIT_USAGE;
			break;
		case 'U':
			if (parse_time_arg(optarg, "--until", &req.until) < 0)
				return EXIT_USAGE;
			break;
		case 'A':
			if (!name_is_valid(optarg))
				return usage_error("invalid account name \"%s\"", optarg);
			strcpy(req.account, optarg);
			break;
		default:
			return usage_error("invalid option for audit");
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (o->field)
		return usage_error("--field does not apply to audit; use --json");
	if (req.since && req.until && req.since >= req.until)
		return usage_error("--since must be before --until");

	if (!o->json)
		printf("%-7s %-20s %-14s %-20s %-16s %6s  %s\n", "SEQ", "TIME", "EVENT", "ACCOUNT",
		       "LEASE", "PEER", "DETAIL");
	return audit_fetch(o, &req, on_list_record, (void *)o);
}

/* ---- export ---- */

struct export_state {
	FILE *file;
	crypto_generichash_state digest;
	uint64_t records;
	int64_t first_seq;
	int64_t last_seq;
	uint32_t last_total;
	bool restart; /* the log changed under the export: start over */
};

static int on_export_record(const struct mid_audit_info *r, void *userdata)
{
	struct export_state *e = userdata;
	char *line = NULL;
	size_t len = 0;
	FILE *mem;

	/* Pages are read by offset, so pruning during the export would
	 * repeat records; a seq that does not grow shows it. */
	if (e->records > 0 && r->seq <= e->last_seq) {
		e->restart = true;
		return 1;
	}
	mem = open_memstream(&line, &len);
	if (!mem)
		return -ENOMEM;
	record_json(mem, r);
	if (fclose(mem) != 0) {
		free(line);
		return -ENOMEM;
	}
	crypto_generichash_update(&e->digest, (const uint8_t *)line, len);
	if (fwrite(line, 1, len, e->file) != len) {
		free(line);
		return -EIO;
	}
	free(line);
	if (e->records == 0)
		e->first_seq = r->seq;
	e->last_seq = r->seq;
	e->records++;
	return 0;
}

/* Reads "key=value" from a reply's detail into out. */
static int detail_value(const char *detail, const char *key, char *out, size_t size)
{
	size_t klen = strlen(key);

	for (const char *p = detail; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		size_t n;

		if (strncmp(p, key, klen) != 0 || p[klen] != '=')
			continue;
		p += klen + 1;
		n = strcspn(p, "\n");
		if (n >= size)
			return -EMSGSIZE;
		memcpy(out, p, n);
		out[n] = '\0';
		return 0;
	}
	return -ENOENT;
}

/* Writes every record to e->file and returns 0, 1 to start over, or an
 * exit status. */
static int export_records(const struct options *o, struct export_state *e)
{
	struct mid_request req = {.type = MID_REQ_AUDIT};
	int r;

	crypto_generichash_init(&e->digest, NULL, 0, HASH_BYTES);
	e->records = 0;
	e->restart = false;
	r = audit_fetch(o, &req, on_export_record, e);
	if (e->restart)
		return 1;
	if (r < 0) {
		fprintf(stderr, "midctl: failed to write the export: %s\n", strerror(-r));
		return EXIT_REFUSED;
	}
	return r;
}

static int export_sign(const struct options *o, struct export_state *e, char *public_hex,
		       size_t public_size)
{
	struct mid_request req = {.type = MID_REQ_AUDIT_SIGN};
	struct mid_response *resp = response_new();
	uint8_t digest[HASH_BYTES];
	char digest_hex[HASH_HEX], signature[crypto_sign_BYTES * 2 + 1];
	int r;

	crypto_generichash_final(&e->digest, digest, sizeof(digest));
	sodium_bin2hex(digest_hex, sizeof(digest_hex), digest, sizeof(digest));
	strcpy(req.credential, digest_hex);
	r = call(o, &req, resp);
	if (r == 0 && (detail_value(resp->detail, "signature", signature, sizeof(signature)) < 0 ||
		       detail_value(resp->detail, "public_key", public_hex, public_size) < 0)) {
		fprintf(stderr, "midctl: the agent's signature reply is malformed\n");
		r = EXIT_REFUSED;
	}
	free(resp);
	if (r != 0)
		return r;

	fprintf(e->file,
		"{\"signature\":\"%s\",\"public_key\":\"%s\",\"digest\":\"%s\",\"records\":%llu,"
		"\"first_seq\":%lld,\"last_seq\":%lld}\n",
		signature, public_hex, digest_hex, (unsigned long long)e->records,
		(long long)e->first_seq, (long long)e->last_seq);
	return 0;
}

static int cmd_audit_export(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"to", required_argument, NULL, 'T'},
		{},
	};
	struct export_state e = {0};
	char public_hex[crypto_sign_PUBLICKEYBYTES * 2 + 1] = "";
	const char *path = NULL;
	int c, fd, r = 1;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (c != 'T')
			return usage_error("invalid option for audit export");
		path = optarg;
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (!path)
		return usage_error("audit export needs --to FILE");

	/* The file must be new, so an export never replaces another one. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fprintf(stderr, "midctl: failed to create %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? "; choose a new file name" : "");
		return EXIT_REFUSED;
	}
	e.file = fdopen(fd, "w");
	if (!e.file) {
		close(fd);
		(void)unlink(path);
		return EXIT_REFUSED;
	}

	for (int attempt = 0; attempt < EXPORT_ATTEMPTS && r == 1; attempt++) {
		if (attempt > 0 && (fflush(e.file) != 0 || ftruncate(fileno(e.file), 0) < 0 ||
				    fseek(e.file, 0, SEEK_SET) < 0)) {
			r = EXIT_REFUSED;
			break;
		}
		r = export_records(o, &e);
	}
	if (r == 1) {
		fprintf(stderr, "midctl: the audit log was pruned %d times during the export; run "
				"it again\n",
			EXPORT_ATTEMPTS);
		r = EXIT_REFUSED;
	}
	if (r == 0)
		r = export_sign(o, &e, public_hex, sizeof(public_hex));
	if (r == 0 && (fflush(e.file) != 0 || fsync(fileno(e.file)) < 0)) {
		fprintf(stderr, "midctl: failed to write %s: %s\n", path, strerror(errno));
		r = EXIT_REFUSED;
	}
	if (fclose(e.file) != 0 && r == 0) {
		fprintf(stderr, "midctl: failed to write %s: %s\n", path, strerror(errno));
		r = EXIT_REFUSED;
	}
	if (r != 0) {
		(void)unlink(path);
		return r;
	}
	printf("Exported %llu audit records (seq %lld to %lld) to %s, signed with public key %s\n",
	       (unsigned long long)e.records, (long long)e.first_seq, (long long)e.last_seq, path,
	       public_hex);
	return 0;
}

/* ---- offline verification of an export ---- */

struct export_file {
	struct mid_audit_info *records;
	size_t n;
	uint8_t digest[HASH_BYTES];
	char signature[crypto_sign_BYTES * 2 + 1];
	char public_key[crypto_sign_PUBLICKEYBYTES * 2 + 1];
	char digest_hex[HASH_HEX];
	long long count;
	unsigned signature_seen;
};

static int on_signature_field(const char *key, const struct json_value *v, void *userdata)
{
	struct export_file *f = userdata;

	if (strcmp(key, "signature") == 0) {
		f->signature_seen |= 1;
		return copy_string_field(v, f->signature, sizeof(f->signature));
	}
	if (strcmp(key, "public_key") == 0) {
		f->signature_seen |= 2;
		return copy_string_field(v, f->public_key, sizeof(f->public_key));
	}
	if (strcmp(key, "digest") == 0) {
		f->signature_seen |= 4;
		return copy_string_field(v, f->digest_hex, sizeof(f->digest_hex));
	}
	if (strcmp(key, "records") == 0 && !v->is_string) {
		f->signature_seen |= 8;
		f->count = v->number;
		return 0;
	}
	if ((strcmp(key, "first_seq") == 0 || strcmp(key, "last_seq") == 0) && !v->is_string)
		return 0;
	return -EBADMSG;
}

/* Reads an export: every line but the last is a record, hashed into the
 * digest as written; the last line carries the signature. Prints what is
 * wrong and returns an exit status, or 0. */
static int export_read(const char *path, struct export_file *ret)
{
	crypto_generichash_state digest;
	_cleanup_free_ char *line = NULL;
	char *pending = NULL;
	size_t cap = 0, n_alloc = 0, lineno = 0;
	ssize_t len;
	FILE *f;
	int r = 0;

	f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "midctl: failed to open %s: %s\n", path, strerror(errno));
		return EXIT_REFUSED;
	}
	crypto_generichash_init(&digest, NULL, 0, HASH_BYTES);

	/* A line is a record only once another line follows it. */
	while ((len = getline(&line, &cap, f)) >= 0) {
		struct record_parse p = {0};

		lineno++;
		if (len > EXPORT_LINE_MAX || line[len - 1] != '\n') {
			fprintf(stderr, "midctl: %s:%zu: line is too long or not terminated; this "
					"is not a midctl audit export\n",
				path, lineno);
			r = EXIT_REFUSED;
			break;
		}
		if (pending) {
			struct mid_audit_info *grown;

			if (ret->n == n_alloc) {
				n_alloc = n_alloc ? n_alloc * 2 : 256;
				grown = realloc(ret->records, n_alloc * sizeof(*grown));
				if (!grown) {
					r = EXIT_REFUSED;
					break;
				}
				ret->records = grown;
			}
			if (json_parse_object(pending, on_record_field, &p) < 0 ||
			    p.seen != FIELDS_RECORD) {
				fprintf(stderr, "midctl: %s:%zu: not an audit record\n", path,
					lineno - 1);
				r = EXIT_REFUSED;
				break;
			}
			crypto_generichash_update(&digest, (const uint8_t *)pending,
						  strlen(pending));
			ret->records[ret->n++] = p.info;
			free(pending);
		}
		pending = strdup(line);
		if (!pending) {
			r = EXIT_REFUSED;
			break;
		}
	}
	fclose(f);

	if (r == 0 && !pending) {
		fprintf(stderr, "midctl: %s is empty\n", path);
		r = EXIT_REFUSED;
	}
	if (r == 0 && (json_parse_object(pending, on_signature_field, ret) < 0 ||
		       ret->signature_seen != 15)) {
		fprintf(stderr, "midctl: %s: the last line is not a signature line; the export is "
				"truncated or was not written by midctl audit export\n",
			path);
		r = EXIT_REFUSED;
	}
	free(pending);
	crypto_generichash_final(&digest, ret->digest, sizeof(ret->digest));
	return r;
}

struct chain_result {
	enum {
		CHAIN_INTACT,
		CHAIN_EDITED,
		CHAIN_DELETED,
		CHAIN_REORDERED,
	} problem;
	int64_t seq;
	char what[256];
};

static const char *const chain_problems[] = {"intact", "edited", "deleted", "reordered"};

static bool seq_appears_later(const struct export_file *f, size_t from, int64_t lo, int64_t hi)
{
	for (size_t i = from; i < f->n; i++)
		if (f->records[i].seq >= lo && f->records[i].seq <= hi)
			return true;
	return false;
}

/* The start of the chain: after the record the last checkpoint names, or
 * seq 1 with an all-zero previous hash. */
static void chain_anchor(const struct export_file *f, int64_t *ret_first, uint8_t prev[HASH_BYTES])
{
	char hex[HASH_HEX];
	long long through;

	*ret_first = 1;
	memset(prev, 0, HASH_BYTES);
	for (size_t i = f->n; i-- > 0;) {
		const struct mid_audit_info *r = &f->records[i];

		if (strcmp(r->event, CHECKPOINT_EVENT) != 0)
			continue;
		if (sscanf(r->detail, "pruned_through=%lld last_hash=%64s", &through, hex) == 2 &&
		    through >= 0 &&
		    sodium_hex2bin(prev, HASH_BYTES, hex, strlen(hex), NULL, NULL, NULL) == 0)
			*ret_first = through + 1;
		else
			memset(prev, 0, HASH_BYTES);
		return;
	}
}

/* Walks the records in file order; stops at the first broken one. */
static void chain_check(const struct export_file *f, struct chain_result *ret)
{
	uint8_t prev[HASH_BYTES], hash[HASH_BYTES], stored[HASH_BYTES];
	int64_t first, prev_seq;

	memset(ret, 0, sizeof(*ret));
	chain_anchor(f, &first, prev);
	prev_seq = first - 1;

	for (size_t i = 0; i < f->n; i++) {
		const struct mid_audit_info *r = &f->records[i];

		ret->seq = r->seq;
		if (r->seq <= prev_seq) {
			ret->problem = CHAIN_REORDERED;
			snprintf(ret->what, sizeof(ret->what), "record %lld comes after record %lld",
				 (long long)r->seq, (long long)prev_seq);
			return;
		}
		if (r->seq > prev_seq + 1) {
			bool later = seq_appears_later(f, i + 1, prev_seq + 1, r->seq - 1);

			ret->problem = later ? CHAIN_REORDERED : CHAIN_DELETED;
			ret->seq = prev_seq + 1;
			if (later)
				snprintf(ret->what, sizeof(ret->what),
					 "record %lld comes before record %lld", (long long)r->seq,
					 (long long)prev_seq + 1);
			else if (r->seq == prev_seq + 2)
				snprintf(ret->what, sizeof(ret->what), "record %lld is missing",
					 (long long)prev_seq + 1);
			else
				snprintf(ret->what, sizeof(ret->what),
					 "records %lld to %lld are missing", (long long)prev_seq + 1,
					 (long long)r->seq - 1);
			return;
		}
		record_hash(prev, r, hash);
		if (sodium_hex2bin(stored, sizeof(stored), r->hash, strlen(r->hash), NULL, NULL,
				   NULL) != 0 ||
		    sodium_memcmp(hash, stored, sizeof(hash)) != 0) {
			ret->problem = CHAIN_EDITED;
			snprintf(ret->what, sizeof(ret->what),
				 "record %lld does not match its hash: it or its link to record "
				 "%lld was edited",
				 (long long)r->seq, (long long)prev_seq);
			return;
		}
		memcpy(prev, hash, sizeof(prev));
		prev_seq = r->seq;
	}
}

static int signature_check(const struct export_file *f, const char *key_hex, bool *ret_ok,
			   char *why, size_t why_size)
{
	uint8_t key[crypto_sign_PUBLICKEYBYTES], signature[crypto_sign_BYTES];
	uint8_t message[sizeof(SIGN_CONTEXT) - 1 + HASH_BYTES];
	char digest_hex[HASH_HEX];

	*ret_ok = false;
	sodium_bin2hex(digest_hex, sizeof(digest_hex), f->digest, sizeof(f->digest));
	if (strcmp(digest_hex, f->digest_hex) != 0) {
		snprintf(why, why_size, "the records do not match the signed digest");
		return 0;
	}
	if (f->count < 0 || (size_t)f->count != f->n) {
		snprintf(why, why_size, "the signature line counts %lld records, the file has %zu",
			 f->count, f->n);
		return 0;
	}
	if (sodium_hex2bin(key, sizeof(key), key_hex, strlen(key_hex), NULL, NULL, NULL) != 0 ||
	    strlen(key_hex) != sizeof(key) * 2)
		return -EINVAL;
	if (sodium_hex2bin(signature, sizeof(signature), f->signature, strlen(f->signature), NULL,
			   NULL, NULL) != 0 ||
	    strlen(f->signature) != sizeof(signature) * 2) {
		snprintf(why, why_size, "the signature is malformed");
		return 0;
	}
	memcpy(message, SIGN_CONTEXT, sizeof(SIGN_CONTEXT) - 1);
	memcpy(message + sizeof(SIGN_CONTEXT) - 1, f->digest, HASH_BYTES);
	if (crypto_sign_verify_detached(signature, message, sizeof(message), key) != 0) {
		snprintf(why, why_size, "the signature does not verify with public key %s",
			 key_hex);
		return 0;
	}
	*ret_ok = true;
	return 0;
}

static int audit_verify_file(const char *path, const char *key_hex)
{
	struct export_file f = {0};
	struct chain_result chain;
	char why[256] = "";
	bool signature_ok;
	int r;

	if (sodium_init() < 0) {
		fprintf(stderr, "midctl: failed to initialise libsodium\n");
		return EXIT_REFUSED;
	}
	r = export_read(path, &f);
	if (r != 0) {
		free(f.records);
		return r;
	}
	chain_check(&f, &chain);
	r = signature_check(&f, key_hex ? key_hex : f.public_key, &signature_ok, why, sizeof(why));
	if (r < 0) {
		free(f.records);
		if (key_hex)
			return usage_error("invalid --key \"%s\": give the %d hex digits of the "
					   "agent's public key (audit-sign.pub in its state "
					   "directory)",
					   key_hex, crypto_sign_PUBLICKEYBYTES * 2);
		fprintf(stderr, "midctl: %s: the public key in the signature line is malformed\n",
			path);
		return EXIT_REFUSED;
	}

	if (chain.problem != CHAIN_INTACT)
		printf("%s: checked %zu records; first broken record: seq %lld (%s): %s\n", path,
		       f.n, (long long)chain.seq, chain_problems[chain.problem], chain.what);
	else if (f.n > 0)
		printf("%s: %zu records, seq %lld to %lld: the chain is intact\n", path, f.n,
		       (long long)f.records[0].seq, (long long)f.records[f.n - 1].seq);
	else
		printf("%s: no records\n", path);
	if (signature_ok)
		printf("%s: signature valid (public key %s)%s\n", path,
		       key_hex ? key_hex : f.public_key,
		       key_hex ? ""
			       : "; the key came from the file itself, so pass --key with the "
				 "agent's audit-sign.pub to rule out a re-signed file");
	else
		printf("%s: signature invalid: %s\n", path, why);
	free(f.records);
	return chain.problem == CHAIN_INTACT && signature_ok ? 0 : EXIT_REFUSED;
}

static int cmd_audit_verify(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"file", required_argument, NULL, 'F'},
		{"key", required_argument, NULL, 'K'},
		{},
	};
	struct mid_request req = {.type = MID_REQ_AUDIT_VERIFY};
	struct mid_response *resp;
	const char *file = NULL, *key = NULL;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (c) {
		case 'F':
			file = optarg;
			break;
		case 'K':
			key = optarg;
			break;
		default:
			return usage_error("invalid option for audit verify");
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (key && !file)
		return usage_error("--key checks an export; give it with --file FILE");
	if (file)
		return audit_verify_file(file, key);

	resp = response_new();
	r = call(o, &req, resp);
	if (r == 0) {
		fputs(resp->detail, stdout);
		if (strcmp(resp->message, "intact") != 0)
			r = EXIT_REFUSED;
	}
	free(resp);
	return r;
}

int cmd_audit(const struct options *o, int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "verify") == 0)
		return cmd_audit_verify(o, argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "export") == 0)
		return cmd_audit_export(o, argc - 1, argv + 1);
	return cmd_audit_list(o, argc, argv);
}

/* ---- report ---- */

struct tally {
	char **keys;
	unsigned *counts;
	size_t n;
};

static int tally_add(struct tally *t, const char *key)
{
	char **keys;
	unsigned *counts;

	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->keys[i], key) == 0) {
			t->counts[i]++;
			return 0;
		}
	keys = realloc(t->keys, (t->n + 1) * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	t->keys = keys;
	counts = realloc(t->counts, (t->n + 1) * sizeof(*counts));
	if (!counts)
		return -ENOMEM;
	t->counts = counts;
	t->keys[t->n] = strdup(key);
	if (!t->keys[t->n])
		return -ENOMEM;
	t->counts[t->n++] = 1;
	return 0;
}

static bool tally_has(const struct tally *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->keys[i], key) == 0)
			return true;
	return false;
}

static void tally_free(struct tally *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->keys[i]);
	free(t->keys);
	free(t->counts);
}

struct report {
	struct tally issued;      /* per account */
	struct tally requesters;  /* per user */
	struct tally approvers;   /* per user */
	struct tally failures;    /* per reason */
	struct tally terminated;  /* per account */
	struct tally used;        /* accounts with an issue or a verification */
	struct tally events;      /* per event type */
	unsigned revoked;
	unsigned expired;
	unsigned records;
};

static void user_name(int64_t uid, char *out, size_t size)
{
	struct passwd pw, *found = NULL;
	char buf[4096];

	if (uid < 0)
		snprintf(out, size, "mid-agentd");
	else if (getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &found) == 0 && found)
		snprintf(out, size, "%s (uid %lld)", found->pw_name, (long long)uid);
	else
		snprintf(out, size, "uid %lld", (long long)uid);
}

static bool event_is_approval(const char *event)
{
	return strcmp(event, "approve") == 0 || strcmp(event, "approval-approve") == 0 ||
	       strcmp(event, "approved") == 0;
}

static bool event_is_termination(const char *event)
{
	return strcmp(event, "session-terminate") == 0 ||
	       strcmp(event, "session-terminated") == 0 || strcmp(event, "session-kill") == 0 ||
	       strcmp(event, "kill") == 0;
}

static int on_report_record(const struct mid_audit_info *r, void *userdata)
{
	struct report *rep = userdata;
	char name[128];
	int ret = tally_add(&rep->events, r->event);

	rep->records++;
	if (ret == 0 && strcmp(r->event, "issue") == 0) {
		user_name(r->peer_uid, name, sizeof(name));
		ret = tally_add(&rep->issued, r->account);
		if (ret == 0)
			ret = tally_add(&rep->requesters, name);
		if (ret == 0)
			ret = tally_add(&rep->used, r->account);
	} else if (ret == 0 && strcmp(r->event, "verify") == 0) {
		ret = tally_add(&rep->used, r->account);
	} else if (ret == 0 && strcmp(r->event, "verify-failed") == 0) {
		ret = tally_add(&rep->failures, r->detail[0] ? r->detail : "(no reason)");
	} else if (ret == 0 && strcmp(r->event, "lockout") == 0) {
		ret = tally_add(&rep->failures, "locked out after repeated failures");
	} else if (ret == 0 && event_is_approval(r->event)) {
		user_name(r->peer_uid, name, sizeof(name));
		ret = tally_add(&rep->approvers, name);
	} else if (ret == 0 && event_is_termination(r->event)) {
		ret = tally_add(&rep->terminated, r->account[0] ? r->account : "(unknown)");
	} else if (strcmp(r->event, "revoke") == 0) {
		rep->revoked++;
	} else if (strcmp(r->event, "expire") == 0) {
		rep->expired++;
	}
	if (ret < 0)
		fputs("midctl: out of memory\n", stderr);
	return ret < 0 ? EXIT_REFUSED : 0;
}

/* Collects the account names the running policy manages from the NSS
 * cache that the agent publishes. Its managed list contains every account
 * of the policy and a "PREFIX*" pattern per class, which is left out. */
static int policy_accounts(const char *runtime_dir, struct tally *ret)
{
	_cleanup_free_ char *path = NULL;
	const struct mid_cache_header *h;
	struct mid_cache cache;
	const uint32_t *index;
	const char *strings;
	int r;

	if (asprintf(&path, "%s/%s", runtime_dir, MID_CACHE_FILE_NAME) < 0)
		return -ENOMEM;
	r = mid_cache_open(path, &cache);
	if (r < 0)
		return r;
	h = cache.header;
	index = (const uint32_t *)(cache.map + h->managed_index_off);
	strings = (const char *)(cache.map + h->strings_off);
	for (uint32_t i = 0; r == 0 && i < h->managed_buckets; i++) {
		uint32_t off = index[i];
		size_t len;

		if (off == MID_CACHE_EMPTY || off >= h->strings_size)
			continue;
		len = strnlen(strings + off, h->strings_size - off);
		if (len == 0 || len == h->strings_size - off || strings[off + len - 1] == '*')
			continue;
		r = tally_add(ret, strings + off);
	}
	mid_cache_close(&cache);
	return r;
}

static int compare_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void report_section_text(const char *title, const struct tally *t, const char *empty)
{
	printf("\n%s\n", title);
	if (t->n == 0)
		printf("  %s\n", empty);
	for (size_t i = 0; i < t->n; i++) {
		printf("  %6u  ", t->counts[i]);
		put_printable(t->keys[i]);
		putchar('\n');
	}
}

static void report_section_json(const char *name, const struct tally *t)
{
	printf(",\"%s\":{", name);
	for (size_t i = 0; i < t->n; i++) {
		if (i)
			putchar(',');
		json_put_string(stdout, t->keys[i]);
		printf(":%u", t->counts[i]);
	}
	putchar('}');
}

static void report_print(const struct options *o, const struct report *rep, int64_t since,
			 const char **unused, size_t n_unused, bool have_policy)
{
	char from[32] = "the first record";

	if (since)
		format_time(since, from, sizeof(from));
	if (o->json) {
		printf("{\"since\":%lld,\"records\":%u,\"revoked\":%u,\"expired\":%u",
		       (long long)since, rep->records, rep->revoked, rep->expired);
		report_section_json("issued_per_account", &rep->issued);
		report_section_json("requesters", &rep->requesters);
		report_section_json("approvers", &rep->approvers);
		report_section_json("failures", &rep->failures);
		report_section_json("sessions_terminated", &rep->terminated);
		report_section_json("events", &rep->events);
		fputs(",\"policy_accounts_unused\":", stdout);
		if (!have_policy)
			fputs("null", stdout);
		else {
			putchar('[');
			for (size_t i = 0; i < n_unused; i++) {
				if (i)
					putchar(',');
				json_put_string(stdout, unused[i]);
			}
			putchar(']');
		}
		fputs("}\n", stdout);
		return;
	}

	printf("Audit report from %s: %u records, %u revocations, %u expiries\n", from,
	       rep->records, rep->revoked, rep->expired);
	report_section_text("Credentials issued per account:", &rep->issued, "none");
	report_section_text("Requesters:", &rep->requesters, "none");
	report_section_text("Approvers:", &rep->approvers, "none");
	report_section_text("Failed verifications by reason:", &rep->failures, "none");
	report_section_text("Sessions terminated per account:", &rep->terminated, "none");
	printf("\nPolicy accounts never used:\n");
	if (!have_policy)
		printf("  unknown: the agent's NSS cache could not be read\n");
	else if (n_unused == 0)
		printf("  none\n");
	for (size_t i = 0; i < n_unused; i++)
		printf("  %s\n", unused[i]);
	report_section_text("Events by type:", &rep->events, "none");
}

int cmd_report(const struct options *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{"since", required_argument, NULL, 'S'},
		{},
	};
	struct mid_request req = {.type = MID_REQ_AUDIT}, status = {.type = MID_REQ_STATUS};
	struct mid_response *resp;
	struct report rep = {0};
	struct tally policy = {0};
	const char **unused = NULL;
	size_t n_unused = 0;
	bool have_policy;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (c != 'S')
			return usage_error("invalid option for report");
		if (parse_time_arg(optarg, "--since", &req.since) < 0)
			return EXIT_USAGE;
	}
	if (optind < argc)
		return usage_error("unexpected argument \"%s\"", argv[optind]);
	if (o->field)
		return usage_error("--field does not apply to report; use --json");

	resp = response_new();
	r = call(o, &status, resp);
	if (r != 0) {
		free(resp);
		return r;
	}
	r = policy_accounts(resp->agent.runtime_dir, &policy);
	have_policy = r == 0;
	if (r < 0)
		fprintf(stderr, "midctl: failed to read the policy's accounts from the NSS cache in "
				"%s: %s\n",
			resp->agent.runtime_dir, strerror(-r));
	free(resp);

	r = audit_fetch(o, &req, on_report_record, &rep);
	if (r == 0 && have_policy) {
		unused = calloc(policy.n + 1, sizeof(*unused));
		for (size_t i = 0; unused && i < policy.n; i++)
			if (!tally_has(&rep.used, policy.keys[i]))
				unused[n_unused++] = policy.keys[i];
		if (unused)
			qsort(unused, n_unused, sizeof(*unused), compare_text);
	}
	if (r == 0)
		report_print(o, &rep, req.since, unused, n_unused, have_policy);

	free(unused);
	tally_free(&policy);
	tally_free(&rep.issued);
	tally_free(&rep.requesters);
	tally_free(&rep.approvers);
	tally_free(&rep.failures);
	tally_free(&rep.terminated);
	tally_free(&rep.used);
	tally_free(&rep.events);
	return r;
}
