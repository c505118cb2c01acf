/* Builder of the NSS cache, used by mid-agentd only. It keeps the records,
 * the string table and the hash indexes in the file's own layout, so that
 * publishing is a series of writes followed by an atomic rename. */
#include "cache.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define INDEX_MIN_BUCKETS 8u

/* Kind of value stored in an index, which decides how values are hashed
 * and compared. */
enum index_kind {
	INDEX_USER_NAME,  /* user record numbers, keyed by name */
	INDEX_USER_UID,	  /* user record numbers, keyed by uid */
	INDEX_GROUP_NAME, /* group record numbers, keyed by name */
	INDEX_GROUP_GID,  /* group record numbers, keyed by gid */
	INDEX_STRING,	  /* string offsets, keyed by the string */
};

/* An open-addressing table with linear probing, as stored in the file. It
 * doubles before it gets more than half full. */
struct hash_index {
	enum index_kind kind;
	uint32_t *slots;
	uint32_t buckets;
	uint32_t count;
};

struct index_key {
	const char *name;
	uint32_t id;
};

struct mid_cache_builder {
	struct mid_cache_user *users;
	uint32_t n_users;
	uint32_t users_capacity;
	struct mid_cache_group *groups;
	uint32_t n_groups;
	uint32_t groups_capacity;

	struct hash_index user_names;
	struct hash_index user_uids;
	struct hash_index group_names;
	struct hash_index group_gids;
	struct hash_index managed;

	char *strings;
	uint32_t strings_size;
	uint32_t strings_capacity;
	/* Maps each non-empty string to its offset, so that shells and
	 * comment fields shared by many accounts are stored once. */
	struct hash_index string_offsets;
};

static uint32_t index_value_hash(const struct mid_cache_builder *b, enum index_kind kind,
				 uint32_t value)
{
	switch (kind) {
	case INDEX_USER_NAME:
		return mid_cache_hash_name(b->strings + b->users[value].name);
	case INDEX_USER_UID:
		return mid_cache_hash_id(b->users[value].uid);
	case INDEX_GROUP_NAME:
		return mid_cache_hash_name(b->strings + b->groups[value].name);
	case INDEX_GROUP_GID:
		return mid_cache_hash_id(b->groups[value].gid);
	case INDEX_STRING:
		return mid_cache_hash_name(b->strings + value);
	}
	abort();
}

static uint32_t index_key_hash(enum index_kind kind, const struct index_key *key)
{
	if (kind == INDEX_USER_UID || kind == INDEX_GROUP_GID)
		return mid_cache_hash_id(key->id);
	return mid_cache_hash_name(key->name);
}

static bool index_value_matches(const struct mid_cache_builder *b, enum index_kind kind,
				uint32_t value, const struct index_key *key)
{
	switch (kind) {
	case INDEX_USER_NAME:
		return strcmp(b->strings + b->users[value].name, key->name) == 0;
	case INDEX_USER_UID:
		return b->users[value].uid == key->id;
	case INDEX_GROUP_NAME:
		return strcmp(b->strings + b->groups[value].name, key->name) == 0;
	case INDEX_GROUP_GID:
		return b->groups[value].gid == key->id;
	case INDEX_STRING:
		return strcmp(b->strings + value, key->name) == 0;
	}
	abort();
}

static int index_init(struct hash_index *ix, enum index_kind kind)
{
	uint32_t *slots = malloc(INDEX_MIN_BUCKETS * sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	memset(slots, 0xff, INDEX_MIN_BUCKETS * sizeof(*slots));
	*ix = (struct hash_index){.kind = kind, .slots = slots, .buckets = INDEX_MIN_BUCKETS};
	return 0;
}

/* Returns the position of the slot whose value matches key, or else of the
 * empty slot where key belongs. The table always has an empty slot. */
static uint32_t index_probe(const struct mid_cache_builder *b, const struct hash_index *ix,
			    const struct index_key *key)
{
	uint32_t mask = ix->buckets - 1;
	uint32_t pos = index_key_hash(ix->kind, key) & mask;

	while (ix->slots[pos] != MID_CACHE_EMPTY) {
		if (index_value_matches(b, ix->kind, ix->slots[pos], key))
			break;
		pos = (pos + 1) & mask;
	}
	return pos;
}

/* Makes room for `more` entries while keeping buckets >= 4 * count. The
 * reader needs 2 * count to end every probe at an empty slot, and the
 * lower load finds most names at the first slot it probes. */
static int index_reserve(const struct mid_cache_builder *b, struct hash_index *ix, uint32_t more)
{
	uint64_t needed = 4 * ((uint64_t)ix->count + more);
	uint32_t buckets = ix->buckets;
	uint32_t *slots;

	if (needed <= buckets)
		return 0;
	while (buckets < needed) {
		if (buckets > UINT32_MAX / 2)
			return -E2BIG;
		buckets *= 2;
	}

	slots = reallocarray(NULL, buckets, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	memset(slots, 0xff, (size_t)buckets * sizeof(*slots));

	for (uint32_t i = 0; i < ix->buckets; i++) {
		uint32_t value = ix->slots[i];
		uint32_t pos;

		if (value == MID_CACHE_EMPTY)
			continue;
		pos = index_value_hash(b, ix->kind, value) & (buckets - 1);
		while (slots[pos] != MID_CACHE_EMPTY)
			pos = (pos + 1) & (buckets - 1);
		slots[pos] = value;
	}

	free(ix->slots);
	ix->slots = slots;
	ix->buckets = buckets;
	return 0;
}

/* Returns the capacity of a record array that must hold count + 1
 * records, or -E2BIG past the limit every reader enforces. */
static int64_t capacity_for_one_more(uint32_t count, uint32_t capacity)
{
	uint32_t new_capacity;

	if (count < capacity)
		return capacity;
	if (count >= MID_CACHE_MAX_RECORDS)
		return -E2BIG;
	new_capacity = capacity ? capacity * 2 : 16;
	if (new_capacity > MID_CACHE_MAX_RECORDS)
		new_capacity = MID_CACHE_MAX_RECORDS;
	return new_capacity;
}

static int users_reserve_one(struct mid_cache_builder *b)
{
	int64_t capacity = capacity_for_one_more(b->n_users, b->users_capacity);
	struct mid_cache_user *users;

	if (capacity < 0)
		return (int)capacity;
	if (capacity == b->users_capacity)
		return 0;
	users = reallocarray(b->users, (size_t)capacity, sizeof(*users));
	if (!users)
		return -ENOMEM;
	b->users = users;
	b->users_capacity = (uint32_t)capacity;
	return 0;
}

static int groups_reserve_one(struct mid_cache_builder *b)
{
	int64_t capacity = capacity_for_one_more(b->n_groups, b->groups_capacity);
	struct mid_cache_group *groups;

	if (capacity < 0)
		return (int)capacity;
	if (capacity == b->groups_capacity)
		return 0;
	groups = reallocarray(b->groups, (size_t)capacity, sizeof(*groups));
	if (!groups)
		return -ENOMEM;
	b->groups = groups;
	b->groups_capacity = (uint32_t)capacity;
	return 0;
}

/* Reserves room for n more strings of `bytes` bytes in total, NULs
 * included, so that the strings_add calls that follow cannot fail. */
static int strings_reserve(struct mid_cache_builder *b, uint32_t n, size_t bytes)
{
	uint64_t needed = (uint64_t)b->strings_size + bytes;
	uint64_t capacity = b->strings_capacity;
	char *p;
	int r;

	/* Every string offset must stay below MID_CACHE_EMPTY, which marks an
	 * empty managed-index slot, and the reader rejects a larger region. */
	if (needed >= MID_CACHE_EMPTY)
		return -E2BIG;

	r = index_reserve(b, &b->string_offsets, n);
	if (r < 0)
		return r;

	if (needed > capacity) {
		while (capacity < needed)
			capacity *= 2;
		if (capacity >= MID_CACHE_EMPTY)
			capacity = MID_CACHE_EMPTY - 1;
		p = realloc(b->strings, capacity);
		if (!p)
			return -ENOMEM;
		b->strings = p;
		b->strings_capacity = (uint32_t)capacity;
	}
	return 0;
}

/* Returns the offset of s in the string table, adding it if it is new.
 * The caller has reserved room with strings_reserve. */
static uint32_t strings_add(struct mid_cache_builder *b, const char *s)
{
	struct index_key key = {.name = s};
	struct hash_index *ix = &b->string_offsets;
	size_t len = strlen(s);
	uint32_t pos;
	uint32_t off;

	if (len == 0)
		return 0;

	pos = index_probe(b, ix, &key);
	if (ix->slots[pos] != MID_CACHE_EMPTY)
		return ix->slots[pos];

	off = b->strings_size;
	memcpy(b->strings + off, s, len + 1);
	b->strings_size += (uint32_t)len + 1;
	ix->slots[pos] = off;
	ix->count++;
	return off;
}

static bool field_is_valid(const char *s)
{
	return !strchr(s, ':') && !strchr(s, '\n');
}

/* A name must be usable as a line's first field in passwd(5) or group(5)
 * format and short enough for libnss_mid to look it up. */
static bool name_is_valid(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strnlen(name, MID_CACHE_NAME_MAX + 1);
	if (len == 0 || len > MID_CACHE_NAME_MAX)
		return false;
	return field_is_valid(name);
}

int mid_cache_builder_new(struct mid_cache_builder **ret)
{
	struct mid_cache_builder *b = calloc(1, sizeof(*b));
	int r;

	if (!b)
		return -ENOMEM;

	/* Offset 0 is the empty string, which every string table starts with. */
	b->strings = malloc(256);
	if (!b->strings) {
		r = -ENOMEM;
		goto fail;
	}
	b->strings[0] = '\0';
	b->strings_size = 1;
	b->strings_capacity = 256;

	r = index_init(&b->user_names, INDEX_USER_NAME);
	if (r < 0)
		goto fail;
	r = index_init(&b->user_uids, INDEX_USER_UID);
	if (r < 0)
		goto fail;
	r = index_init(&b->group_names, INDEX_GROUP_NAME);
	if (r < 0)
		goto fail;
	r = index_init(&b->group_gids, INDEX_GROUP_GID);
	if (r < 0)
		goto fail;
	r = index_init(&b->managed, INDEX_STRING);
	if (r < 0)
		goto fail;
	r = index_init(&b->string_offsets, INDEX_STRING);
	if (r < 0)
		goto fail;

	*ret = b;
	return 0;

fail:
	mid_cache_builder_free(b);
	return r;
}

void mid_cache_builder_free(struct mid_cache_builder *b)
{
	if (!b)
		return;
	free(b->users);
	free(b->groups);
	free(b->user_names.slots);
	free(b->user_uids.slots);
	free(b->group_names.slots);
	free(b->group_gids.slots);
	free(b->managed.slots);
	free(b->string_offsets.slots);
	free(b->strings);
	free(b);
}

/* NULL stands for the empty string in the optional user fields. */
static const char *text_or_empty(const char *s)
{
	return s ? s : "";
}

int mid_cache_builder_add_user(struct mid_cache_builder *b, const char *name, uid_t uid, gid_t gid,
			       const char *gecos, const char *dir, const char *shell,
			       int64_t expires_at)
{
	struct index_key name_key = {.name = name};
	struct index_key uid_key = {.id = uid};
	uint32_t name_pos;
	uint32_t uid_pos;
	int r;

	gecos = text_or_empty(gecos);
	dir = text_or_empty(dir);
	shell = text_or_empty(shell);

	/* (uid_t)-1 is the "no change" argument of chown(2) and setreuid(2). */
	if (!name_is_valid(name) || uid == (uid_t)-1 || gid == (gid_t)-1)
		return -EINVAL;
	if (!field_is_valid(gecos) || !field_is_valid(dir) || !field_is_valid(shell))
		return -EINVAL;

	/* Every allocation happens before the builder changes, so a failure
	 * leaves it as it was. */
	r = users_reserve_one(b);
	if (r < 0)
		return r;
	r = index_reserve(b, &b->user_names, 1);
	if (r < 0)
		return r;
	r = index_reserve(b, &b->user_uids, 1);
	if (r < 0)
		return r;

	name_pos = index_probe(b, &b->user_names, &name_key);
	if (b->user_names.slots[name_pos] != MID_CACHE_EMPTY)
		return -EEXIST;
	uid_pos = index_probe(b, &b->user_uids, &uid_key);
	if (b->user_uids.slots[uid_pos] != MID_CACHE_EMPTY)
		return -EEXIST;

	r = strings_reserve(b, 4, strlen(name) + strlen(gecos) + strlen(dir) + strlen(shell) + 4);
	if (r < 0)
		return r;

	b->users[b->n_users] = (struct mid_cache_user){
	    .name = strings_add(b, name),
	    .gecos = strings_add(b, gecos),
	    .dir = strings_add(b, dir),
	    .shell = strings_add(b, shell),
	    .uid = uid,
	    .gid = gid,
	    .expires_at = expires_at,
	};
	b->user_names.slots[name_pos] = b->n_users;
	b->user_names.count++;
	b->user_uids.slots[uid_pos] = b->n_users;
	b->user_uids.count++;
	b->n_users++;
	return 0;
}

int mid_cache_builder_add_group(struct mid_cache_builder *b, const char *name, gid_t gid,
				int64_t expires_at)
{
	struct index_key name_key = {.name = name};
	struct index_key gid_key = {.id = gid};
	uint32_t name_pos;
	uint32_t gid_pos;
	int r;

	if (!name_is_valid(name) || gid == (gid_t)-1)
		return -EINVAL;

	r = groups_reserve_one(b);
	if (r < 0)
		return r;
	r = index_reserve(b, &b->group_names, 1);
	if (r < 0)
		return r;
	r = index_reserve(b, &b->group_gids, 1);
	if (r < 0)
		return r;

	name_pos = index_probe(b, &b->group_names, &name_key);
	if (b->group_names.slots[name_pos] != MID_CACHE_EMPTY)
		return -EEXIST;
	gid_pos = index_probe(b, &b->group_gids, &gid_key);
	if (b->group_gids.slots[gid_pos] != MID_CACHE_EMPTY)
		return -EEXIST;

	r = strings_reserve(b, 1, strlen(name) + 1);
	if (r < 0)
		return r;

	b->groups[b->n_groups] = (struct mid_cache_group){
	    .name = strings_add(b, name),
	    .gid = gid,
	    .expires_at = expires_at,
	};
	b->group_names.slots[name_pos] = b->n_groups;
	b->group_names.count++;
	b->group_gids.slots[gid_pos] = b->n_groups;
	b->group_gids.count++;
	b->n_groups++;
	return 0;
}

int mid_cache_builder_add_managed(struct mid_cache_builder *b, const char *name)
{
	struct index_key key = {.name = name};
	uint32_t pos;
	int r;

	if (!name_is_valid(name))
		return -EINVAL;
	if (b->managed.count >= MID_CACHE_MAX_RECORDS)
		return -E2BIG;

	r = index_reserve(b, &b->managed, 1);
	if (r < 0)
		return r;
	pos = index_probe(b, &b->managed, &key);
	if (b->managed.slots[pos] != MID_CACHE_EMPTY)
		return -EEXIST;

	r = strings_reserve(b, 1, strlen(name) + 1);
	if (r < 0)
		return r;

	b->managed.slots[pos] = strings_add(b, name);
	b->managed.count++;
	return 0;
}

/* Empties the slot at pos and moves later entries of its probe run back
 * into the gap where their own probe start allows, so that every probe
 * still ends at an empty slot and finds what it found before. */
static void index_delete(const struct mid_cache_builder *b, struct hash_index *ix, uint32_t pos)
{
	uint32_t mask = ix->buckets - 1;
	uint32_t hole = pos;

	for (uint32_t i = (pos + 1) & mask; ix->slots[i] != MID_CACHE_EMPTY; i = (i + 1) & mask) {
		uint32_t start = index_value_hash(b, ix->kind, ix->slots[i]) & mask;

		/* The entry may fill the hole when the hole lies on its way
		 * from start to i. */
		if (((i - start) & mask) >= ((i - hole) & mask)) {
			ix->slots[hole] = ix->slots[i];
			hole = i;
		}
	}
	ix->slots[hole] = MID_CACHE_EMPTY;
	ix->count--;
}

static int user_find(const struct mid_cache_builder *b, const char *name, uint32_t *ret_pos)
{
	struct index_key key = {.name = name};
	uint32_t pos;

	if (!name_is_valid(name))
		return -EINVAL;
	pos = index_probe(b, &b->user_names, &key);
	if (b->user_names.slots[pos] == MID_CACHE_EMPTY)
		return -ENOENT;
	*ret_pos = pos;
	return 0;
}

int mid_cache_builder_remove_user(struct mid_cache_builder *b, const char *name)
{
	uint32_t name_pos, uid_pos, record, last;
	int r;

	r = user_find(b, name, &name_pos);
	if (r < 0)
		return r;
	record = b->user_names.slots[name_pos];
	uid_pos = index_probe(b, &b->user_uids, &(struct index_key){.id = b->users[record].uid});
	if (b->user_uids.slots[uid_pos] != record)
		return -EIO;

	index_delete(b, &b->user_names, name_pos);
	index_delete(b, &b->user_uids, uid_pos);

	/* The last record moves into the freed place, and its index
	 * entries follow it. The removed record's strings stay in the table
	 * until the next full build. */
	last = b->n_users - 1;
	if (record != last) {
		struct index_key key = {.name = b->strings + b->users[last].name};

		name_pos = index_probe(b, &b->user_names, &key);
		uid_pos = index_probe(b, &b->user_uids, &(struct index_key){.id = b->users[last].uid});
		b->users[record] = b->users[last];
		b->user_names.slots[name_pos] = record;
		b->user_uids.slots[uid_pos] = record;
	}
	b->n_users--;
	return 0;
}

int mid_cache_builder_set_user_expiry(struct mid_cache_builder *b, const char *name,
				      int64_t expires_at)
{
	uint32_t pos;
	int r = user_find(b, name, &pos);

	if (r < 0)
		return r;
	b->users[b->user_names.slots[pos]].expires_at = expires_at;
	return 0;
}

int mid_cache_builder_set_group_expiry(struct mid_cache_builder *b, const char *name, gid_t gid,
				       int64_t expires_at)
{
	struct index_key key = {.name = name};
	uint32_t pos;

	if (!name_is_valid(name))
		return -EINVAL;
	pos = index_probe(b, &b->group_names, &key);
	if (b->group_names.slots[pos] == MID_CACHE_EMPTY)
		return mid_cache_builder_add_group(b, name, gid, expires_at);
	if (b->groups[b->group_names.slots[pos]].gid != gid)
		return -EEXIST;
	b->groups[b->group_names.slots[pos]].expires_at = expires_at;
	return 0;
}

int64_t mid_cache_builder_gid_expiry(const struct mid_cache_builder *b, gid_t gid)
{
	int64_t last = 0;

	for (uint32_t i = 0; i < b->n_users; i++)
		if (b->users[i].gid == gid && b->users[i].expires_at > last)
			last = b->users[i].expires_at;
	return last;
}

uint32_t mid_cache_builder_n_users(const struct mid_cache_builder *b)
{
	return b->n_users;
}

/* Places the sections one after another in the order cache.h lists them. */
static void header_layout(const struct mid_cache_builder *b, uint64_t generation, int64_t now,
			  struct mid_cache_header *h)
{
	*h = (struct mid_cache_header){
	    .version = MID_CACHE_VERSION,
	    .header_size = sizeof(*h),
	    .generation = generation,
	    .written_at = now,
	    .n_users = b->n_users,
	    .n_groups = b->n_groups,
	    .n_managed = b->managed.count,
	    .user_buckets = b->user_names.buckets,
	    .group_buckets = b->group_names.buckets,
	    .managed_buckets = b->managed.buckets,
	    .strings_size = b->strings_size,
	};
	memcpy(h->magic, MID_CACHE_MAGIC, sizeof(h->magic));

	mid_cache_layout(h);
}

static int pwrite_all(int fd, const void *data, size_t size, uint64_t off)
{
	const uint8_t *p = data;

	while (size > 0) {
		ssize_t n = pwrite(fd, p, size, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += (uint64_t)n;
		size -= (size_t)n;
	}
	return 0;
}

/* Writes every section at its offset. Gaps left by alignment read as
 * zeros, and the last section, the strings, sets the file size. */
static int cache_file_write(int fd, const struct mid_cache_builder *b,
			    const struct mid_cache_header *h)
{
	const struct {
		const void *data;
		size_t size;
		uint64_t off;
	} sections[] = {
	    {h, sizeof(*h), 0},
	    {b->users, (size_t)b->n_users * sizeof(*b->users), h->users_off},
	    {b->groups, (size_t)b->n_groups * sizeof(*b->groups), h->groups_off},
	    {b->user_names.slots, (size_t)b->user_names.buckets * sizeof(uint32_t),
	     h->user_name_index_off},
	    {b->user_uids.slots, (size_t)b->user_uids.buckets * sizeof(uint32_t),
	     h->user_uid_index_off},
	    {b->group_names.slots, (size_t)b->group_names.buckets * sizeof(uint32_t),
	     h->group_name_index_off},
	    {b->group_gids.slots, (size_t)b->group_gids.buckets * sizeof(uint32_t),
	     h->group_gid_index_off},
	    {b->managed.slots, (size_t)b->managed.buckets * sizeof(uint32_t), h->managed_index_off},
	    {b->strings, b->strings_size, h->strings_off},
	};

	for (size_t i = 0; i < MID_ELEMENTSOF(sections); i++) {
		int r;

		if (sections[i].size == 0)
			continue;
		r = pwrite_all(fd, sections[i].data, sections[i].size, sections[i].off);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Maps the header of the cache currently at path for writing, or returns
 * NULL when there is none or the file is not a cache of this version.
 * Nothing needs marking in those cases, so errors are not reported. */
static struct mid_cache_header *old_header_map(const char *path)
{
	_cleanup_close_ int fd = -1;
	struct mid_cache_header *h;
	struct stat st;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	if (st.st_size < (off_t)sizeof(*h))
		return NULL;

	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		return NULL;
	if (memcmp(h->magic, MID_CACHE_MAGIC, sizeof(h->magic)) != 0 ||
	    h->version != MID_CACHE_VERSION || h->file_size != (uint64_t)st.st_size) {
		munmap(h, sizeof(*h));
		return NULL;
	}
	return h;
}

/* Makes the rename durable, because the new directory entry reaches the
 * disk only with an fsync of the directory itself. */
static int directory_fsync(const char *path)
{
	_cleanup_free_ char *dir = strdup(path);
	_cleanup_close_ int fd = -1;
	char *slash;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		return -errno;
	return 0;
}

int mid_cache_builder_publish(struct mid_cache_builder *b, const char *path, uint64_t generation,
			      int64_t now)
{
	_cleanup_free_ char *tmp_path = NULL;
	_cleanup_close_ int fd = -1;
	struct mid_cache_header *old = NULL;
	struct mid_cache_header h;
	bool renamed = false;
	int r;

	header_layout(b, generation, now, &h);

	if (asprintf(&tmp_path, "%s.XXXXXX", path) < 0) {
		tmp_path = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(tmp_path, O_CLOEXEC);
	if (fd < 0)
		return -errno;

	/* mkostemp creates the file with mode 0600, but every process that
	 * resolves users must be able to read it. */
	if (fchmod(fd, 0644) < 0) {
		r = -errno;
		goto finish;
	}
	r = cache_file_write(fd, b, &h);
	if (r < 0)
		goto finish;
	if (fsync(fd) < 0) {
		r = -errno;
		goto finish;
	}

	/* The old file must be opened before the rename, when path still
	 * names it. */
	old = old_header_map(path);
	if (rename(tmp_path, path) < 0) {
		r = -errno;
		goto finish;
	}
	renamed = true;

	/* Readers of the old file have to move on even if the fsync fails,
	 * because the new file is already visible at path. */
	r = directory_fsync(path);
	if (old) {
		/* Set only after the rename, so a reader that sees the flag
		 * and opens path gets the new file. Pairs with the acquire
		 * load in mid_cache_is_stale. */
		__atomic_store_n(&old->stale, 1, __ATOMIC_RELEASE);
	}

finish:
	if (!renamed)
		unlink(tmp_path);
	/* No msync: readers share the page cache and see the store at once,
	 * and no reader opens the replaced file again, so a flush to disk
	 * would serve no reader. */
	if (old)
		munmap(old, sizeof(*old));
	return r;
}
