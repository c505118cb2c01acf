/* Reader of the NSS cache. It runs inside every process that resolves a
 * user, so it trusts nothing in the file and makes no syscall per lookup. */
#include "cache.h"

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* Every section offset is a multiple of this, so records and index slots
 * are naturally aligned in the page-aligned map. */
#define SECTION_ALIGN 8u

static bool is_power_of_two(uint32_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* Checks that count elements of elem_size bytes at off lie between the end
 * of the header and the end of the file. The product of a 32-bit count and
 * a record size cannot overflow 64 bits. */
static bool section_is_valid(const struct mid_cache_header *h, uint64_t off, uint32_t count,
			     size_t elem_size)
{
	uint64_t size = (uint64_t)count * elem_size;

	if (off % SECTION_ALIGN != 0)
		return false;
	if (off < h->header_size || off > h->file_size)
		return false;
	return size <= h->file_size - off;
}

static bool index_is_valid(const struct mid_cache_header *h, uint64_t off, uint32_t buckets,
			   uint32_t entries)
{
	if (!is_power_of_two(buckets) || buckets / 2 < entries)
		return false;
	return section_is_valid(h, off, buckets, sizeof(uint32_t));
}

static bool layout_is_exact(const struct mid_cache_header *h)
{
	struct mid_cache_header expected = *h;

	mid_cache_layout(&expected);
	return expected.users_off == h->users_off && expected.groups_off == h->groups_off &&
	       expected.user_name_index_off == h->user_name_index_off &&
	       expected.user_uid_index_off == h->user_uid_index_off &&
	       expected.group_name_index_off == h->group_name_index_off &&
	       expected.group_gid_index_off == h->group_gid_index_off &&
	       expected.managed_index_off == h->managed_index_off &&
	       expected.strings_off == h->strings_off && expected.file_size == h->file_size;
}

static int header_validate(const struct mid_cache_header *h, const uint8_t *map, uint64_t size)
{
	if (memcmp(h->magic, MID_CACHE_MAGIC, sizeof(h->magic)) != 0)
		return -EBADMSG;
	if (h->version != MID_CACHE_VERSION)
		return -EBADMSG;
	if (h->header_size < sizeof(*h) || h->header_size > size)
		return -EBADMSG;
	if (h->file_size != size)
		return -EBADMSG;

	if (h->n_users > MID_CACHE_MAX_RECORDS || h->n_groups > MID_CACHE_MAX_RECORDS ||
	    h->n_managed > MID_CACHE_MAX_RECORDS)
		return -EBADMSG;

	if (!section_is_valid(h, h->users_off, h->n_users, sizeof(struct mid_cache_user)) ||
	    !section_is_valid(h, h->groups_off, h->n_groups, sizeof(struct mid_cache_group)))
		return -EBADMSG;
	if (!index_is_valid(h, h->user_name_index_off, h->user_buckets, h->n_users) ||
	    !index_is_valid(h, h->user_uid_index_off, h->user_buckets, h->n_users) ||
	    !index_is_valid(h, h->group_name_index_off, h->group_buckets, h->n_groups) ||
	    !index_is_valid(h, h->group_gid_index_off, h->group_buckets, h->n_groups) ||
	    !index_is_valid(h, h->managed_index_off, h->managed_buckets, h->n_managed))
		return -EBADMSG;

	/* Offset 0 must be "" and the last byte a NUL, so that every string
	 * offset below strings_size starts a terminated string. String offsets
	 * are 32-bit, and MID_CACHE_EMPTY must never be one of them. */
	if (h->strings_size == 0 || h->strings_size >= MID_CACHE_EMPTY)
		return -EBADMSG;
	if (h->strings_off % SECTION_ALIGN != 0 || h->strings_off < h->header_size ||
	    h->strings_off > size || h->strings_size > size - h->strings_off)
		return -EBADMSG;
	if (map[h->strings_off] != '\0' || map[h->strings_off + h->strings_size - 1] != '\0')
		return -EBADMSG;

	/* Bounds alone would let two sections overlap, and a group read from
	 * the users section could then come out as gid 0. */
	if (!layout_is_exact(h))
		return -EBADMSG;
	return 0;
}

int mid_cache_open(const char *path, struct mid_cache *ret)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	void *map;
	int r;

	/* O_NONBLOCK keeps a FIFO at path from hanging the caller until
	 * fstat rejects it. It has no effect on a regular file. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADMSG;
	if (st.st_size < (off_t)sizeof(struct mid_cache_header))
		return -EBADMSG;
	if ((uint64_t)st.st_size > SIZE_MAX)
		return -EFBIG;

	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return -errno;

	r = header_validate(map, map, (uint64_t)st.st_size);
	if (r < 0) {
		munmap(map, (size_t)st.st_size);
		return r;
	}

	*ret = (struct mid_cache){
	    .map = map,
	    .size = (size_t)st.st_size,
	    .dev = st.st_dev,
	    .ino = st.st_ino,
	    .header = map,
	};
	return 0;
}

void mid_cache_close(struct mid_cache *cache)
{
	if (cache->map)
		munmap((void *)cache->map, cache->size);
	*cache = (struct mid_cache){0};
}

bool mid_cache_is_stale(const struct mid_cache *cache)
{
	/* Pairs with the release store in mid_cache_builder_publish. */
	return __atomic_load_n(&cache->header->stale, __ATOMIC_ACQUIRE) != 0;
}

/* Returns the string at offset off, or NULL when off points outside the
 * strings region. A NUL in the region's last byte ends every string that
 * starts inside it, so one load replaces a search for the terminator. The
 * byte was checked at open, but the map shares the file's pages, so it is
 * checked again at every access. */
static const char *string_at(const struct mid_cache *cache, uint32_t off)
{
	const struct mid_cache_header *h = cache->header;
	const char *strings = (const char *)cache->map + h->strings_off;

	if (off >= h->strings_size)
		return NULL;
	if (strings[h->strings_size - 1] != '\0')
		return NULL;
	return strings + off;
}

/* Returns 1 when the string at offset off is name, 0 when it is another
 * string, or -EBADMSG when off points outside the strings region. len is
 * strlen(name). A match needs len + 1 bytes inside the region, so the
 * comparison reads exactly those bytes, or none when fewer are left.
 * Unlike strcmp it looks for no terminator, which makes a probe cheaper. */
static int string_equals(const struct mid_cache *cache, uint32_t off, const char *name,
			 size_t len)
{
	const char *candidate = string_at(cache, off);

	if (!candidate)
		return -EBADMSG;
	if (cache->header->strings_size - off <= len)
		return 0;
	return memcmp(candidate, name, len + 1) == 0;
}

static const uint32_t *index_at(const struct mid_cache *cache, uint64_t off)
{
	return (const uint32_t *)(cache->map + off);
}

static const struct mid_cache_user *user_record(const struct mid_cache *cache, uint32_t i)
{
	return (const struct mid_cache_user *)(cache->map + cache->header->users_off) + i;
}

static const struct mid_cache_group *group_record(const struct mid_cache *cache, uint32_t i)
{
	return (const struct mid_cache_group *)(cache->map + cache->header->groups_off) + i;
}

static int user_view_fill(const struct mid_cache *cache, const struct mid_cache_user *u,
			  struct mid_cache_user_view *ret)
{
	const char *name = string_at(cache, u->name);
	const char *gecos = string_at(cache, u->gecos);
	const char *dir = string_at(cache, u->dir);
	const char *shell = string_at(cache, u->shell);

	if (!name || !gecos || !dir || !shell)
		return -EBADMSG;

	*ret = (struct mid_cache_user_view){
	    .name = name,
	    .gecos = gecos,
	    .dir = dir,
	    .shell = shell,
	    .uid = u->uid,
	    .gid = u->gid,
	    .expires_at = u->expires_at,
	};
	return 0;
}

static int group_view_fill(const struct mid_cache *cache, const struct mid_cache_group *g,
			   struct mid_cache_group_view *ret)
{
	const char *name = string_at(cache, g->name);

	if (!name)
		return -EBADMSG;

	*ret = (struct mid_cache_group_view){
	    .name = name,
	    .gid = g->gid,
	    .expires_at = g->expires_at,
	};
	return 0;
}

/* The probe helpers return the record number of the match, -ENOENT at an
 * empty slot, or -EBADMSG for a slot out of range or a table without an
 * empty slot, which no writer produces. */

static int64_t user_probe_name(const struct mid_cache *cache, const char *name)
{
	const struct mid_cache_header *h = cache->header;
	const uint32_t *index = index_at(cache, h->user_name_index_off);
	uint32_t mask = h->user_buckets - 1;
	uint32_t pos = mid_cache_hash_name(name) & mask;
	size_t len = strlen(name);

	for (uint32_t n = 0; n < h->user_buckets; n++, pos = (pos + 1) & mask) {
		uint32_t slot = index[pos];
		int r;

		if (slot == MID_CACHE_EMPTY)
			return -ENOENT;
		if (slot >= h->n_users)
			return -EBADMSG;
		r = string_equals(cache, user_record(cache, slot)->name, name, len);
		if (r < 0)
			return r;
		if (r > 0)
			return slot;
	}
	return -EBADMSG;
}

static int64_t user_probe_uid(const struct mid_cache *cache, uid_t uid)
{
	const struct mid_cache_header *h = cache->header;
	const uint32_t *index = index_at(cache, h->user_uid_index_off);
	uint32_t mask = h->user_buckets - 1;
	uint32_t pos = mid_cache_hash_id(uid) & mask;

	for (uint32_t n = 0; n < h->user_buckets; n++, pos = (pos + 1) & mask) {
		uint32_t slot = index[pos];

		if (slot == MID_CACHE_EMPTY)
			return -ENOENT;
		if (slot >= h->n_users)
			return -EBADMSG;
		if (user_record(cache, slot)->uid == uid)
			return slot;
	}
	return -EBADMSG;
}

static int64_t group_probe_name(const struct mid_cache *cache, const char *name)
{
	const struct mid_cache_header *h = cache->header;
	const uint32_t *index = index_at(cache, h->group_name_index_off);
	uint32_t mask = h->group_buckets - 1;
	uint32_t pos = mid_cache_hash_name(name) & mask;
	size_t len = strlen(name);

	for (uint32_t n = 0; n < h->group_buckets; n++, pos = (pos + 1) & mask) {
		uint32_t slot = index[pos];
		int r;

		if (slot == MID_CACHE_EMPTY)
			return -ENOENT;
		if (slot >= h->n_groups)
			return -EBADMSG;
		r = string_equals(cache, group_record(cache, slot)->name, name, len);
		if (r < 0)
			return r;
		if (r > 0)
			return slot;
	}
	return -EBADMSG;
}

static int64_t group_probe_gid(const struct mid_cache *cache, gid_t gid)
{
	const struct mid_cache_header *h = cache->header;
	const uint32_t *index = index_at(cache, h->group_gid_index_off);
	uint32_t mask = h->group_buckets - 1;
	uint32_t pos = mid_cache_hash_id(gid) & mask;

	for (uint32_t n = 0; n < h->group_buckets; n++, pos = (pos + 1) & mask) {
		uint32_t slot = index[pos];

		if (slot == MID_CACHE_EMPTY)
			return -ENOENT;
		if (slot >= h->n_groups)
			return -EBADMSG;
		if (group_record(cache, slot)->gid == gid)
			return slot;
	}
	return -EBADMSG;
}

static int user_found(const struct mid_cache *cache, int64_t slot, int64_t now,
		      struct mid_cache_user_view *ret)
{
	const struct mid_cache_user *u;

	if (slot < 0)
		return (int)slot;
	u = user_record(cache, (uint32_t)slot);
	if (u->expires_at <= now)
		return -ENOENT;
	return user_view_fill(cache, u, ret);
}

static int group_found(const struct mid_cache *cache, int64_t slot, int64_t now,
		       struct mid_cache_group_view *ret)
{
	const struct mid_cache_group *g;

	if (slot < 0)
		return (int)slot;
	g = group_record(cache, (uint32_t)slot);
	if (g->expires_at <= now)
		return -ENOENT;
	return group_view_fill(cache, g, ret);
}

int mid_cache_find_user_by_name(const struct mid_cache *cache, const char *name, int64_t now,
				struct mid_cache_user_view *ret)
{
	if (!name)
		return -ENOENT;
	return user_found(cache, user_probe_name(cache, name), now, ret);
}

int mid_cache_find_user_by_uid(const struct mid_cache *cache, uid_t uid, int64_t now,
			       struct mid_cache_user_view *ret)
{
	return user_found(cache, user_probe_uid(cache, uid), now, ret);
}

int mid_cache_find_group_by_name(const struct mid_cache *cache, const char *name, int64_t now,
				 struct mid_cache_group_view *ret)
{
	if (!name)
		return -ENOENT;
	return group_found(cache, group_probe_name(cache, name), now, ret);
}

int mid_cache_find_group_by_gid(const struct mid_cache *cache, gid_t gid, int64_t now,
				struct mid_cache_group_view *ret)
{
	return group_found(cache, group_probe_gid(cache, gid), now, ret);
}

int mid_cache_user_at(const struct mid_cache *cache, uint32_t i, int64_t now,
		      struct mid_cache_user_view *ret)
{
	if (i >= cache->header->n_users)
		return -ERANGE;
	return user_found(cache, i, now, ret);
}

int mid_cache_group_at(const struct mid_cache *cache, uint32_t i, int64_t now,
		       struct mid_cache_group_view *ret)
{
	if (i >= cache->header->n_groups)
		return -ERANGE;
	return group_found(cache, i, now, ret);
}

int mid_cache_is_managed(const struct mid_cache *cache, const char *name)
{
	const struct mid_cache_header *h = cache->header;
	const uint32_t *index = index_at(cache, h->managed_index_off);
	uint32_t mask = h->managed_buckets - 1;
	uint32_t pos;
	size_t len;

	if (!name)
		return 0;

	pos = mid_cache_hash_name(name) & mask;
	len = strlen(name);
	for (uint32_t n = 0; n < h->managed_buckets; n++, pos = (pos + 1) & mask) {
		uint32_t slot = index[pos];
		int r;

		if (slot == MID_CACHE_EMPTY)
			return 0;
		r = string_equals(cache, slot, name, len);
		if (r != 0)
			return r;
	}
	return -EBADMSG;
}
