/* The NSS cache: a read-only file that mid-agentd publishes atomically and
 * that libnss_mid and pam_mid map into memory. It lists the ephemeral
 * accounts and their primary groups, each with its own expiry, and the
 * names of every account the policy manages.
 *
 * Layout (native byte order; the file never leaves the host):
 *   struct mid_cache_header
 *   struct mid_cache_user    users[n_users]
 *   struct mid_cache_group   groups[n_groups]
 *   uint32_t user_name_index[user_buckets]   open addressing, linear probing
 *   uint32_t user_uid_index[user_buckets]
 *   uint32_t group_name_index[group_buckets]
 *   uint32_t group_gid_index[group_buckets]
 *   uint32_t managed_index[managed_buckets]  string offsets of managed names
 *   char strings[strings_size]               NUL-terminated, offset 0 is ""
 * An index slot holds a record number (or string offset) or
 * MID_CACHE_EMPTY. Bucket counts are powers of two, at least twice the
 * number of entries, so every probe ends at an empty slot. A key's first
 * slot is its hash (mid_cache_hash_name, mid_cache_hash_id) masked with
 * buckets - 1. Sections start at multiples of 8 bytes.
 *
 * Replacement: the writer renames a new file over the old one and then sets
 * `stale` in the old file's header, so a reader learns of a new file by
 * reading one word of mapped memory. The reader also compares the file's
 * inode once a second, in case a writer died between rename and marking. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

#define MID_CACHE_MAGIC "MIDNSS\0\1"
#define MID_CACHE_VERSION 1
#define MID_CACHE_EMPTY UINT32_MAX
#define MID_CACHE_MAX_RECORDS (1u << 22) /* bounds every count a reader accepts */
#define MID_CACHE_NAME_MAX 256 /* bytes in a user or group name, without the NUL */

struct mid_cache_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint64_t file_size;
	uint64_t generation;
	int64_t written_at;
	uint32_t stale; /* written by the publisher of the next file; read atomically */
	uint32_t n_users;
	uint32_t n_groups;
	uint32_t n_managed;
	uint32_t user_buckets;
	uint32_t group_buckets;
	uint32_t managed_buckets;
	uint32_t reserved;
	uint64_t users_off;
	uint64_t groups_off;
	uint64_t user_name_index_off;
	uint64_t user_uid_index_off;
	uint64_t group_name_index_off;
	uint64_t group_gid_index_off;
	uint64_t managed_index_off;
	uint64_t strings_off;
	uint64_t strings_size;
};

struct mid_cache_user {
	uint32_t name; /* string offsets */
	uint32_t gecos;
	uint32_t dir;
	uint32_t shell;
	uint32_t uid;
	uint32_t gid;
	int64_t expires_at; /* seconds since the Epoch; the record is hidden from then on */
};

struct mid_cache_group {
	uint32_t name;
	uint32_t gid;
	int64_t expires_at;
};

/* Fills in the section offsets and the file size that the counts, bucket
 * counts and strings_size of h imply. Sections follow the header in the
 * order listed above, each starting at a multiple of 8 bytes. The writer
 * lays files out with it and the reader accepts no other layout, so no two
 * sections can overlap. */
static inline void mid_cache_layout(struct mid_cache_header *h)
{
	const uint64_t sizes[] = {
		(uint64_t)h->n_users * sizeof(struct mid_cache_user),
		(uint64_t)h->n_groups * sizeof(struct mid_cache_group),
		(uint64_t)h->user_buckets * sizeof(uint32_t),
		(uint64_t)h->user_buckets * sizeof(uint32_t),
		(uint64_t)h->group_buckets * sizeof(uint32_t),
		(uint64_t)h->group_buckets * sizeof(uint32_t),
		(uint64_t)h->managed_buckets * sizeof(uint32_t),
	};
	uint64_t *const offsets[] = {
		&h->users_off,		  &h->groups_off,	    &h->user_name_index_off,
		&h->user_uid_index_off,	  &h->group_name_index_off, &h->group_gid_index_off,
		&h->managed_index_off,
	};
	uint64_t off = (sizeof(*h) + 7) & ~(uint64_t)7;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		*offsets[i] = off;
		off = (off + sizes[i] + 7) & ~(uint64_t)7;
	}
	h->strings_off = off;
	h->file_size = off + h->strings_size;
}

/* A user record as the reader returns it; the strings point into the map. */
struct mid_cache_user_view {
	const char *name;
	const char *gecos;
	const char *dir;
	const char *shell;
	uid_t uid;
	gid_t gid;
	int64_t expires_at;
};

struct mid_cache_group_view {
	const char *name;
	gid_t gid;
	int64_t expires_at;
};

/* FNV-1a, 32-bit, over the bytes of a user, group or managed name. */
static inline uint32_t mid_cache_hash_name(const char *name)
{
	uint32_t hash = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		hash ^= *p;
		hash *= 16777619u;
	}
	return hash;
}

/* Multiplicative (Knuth) hash of a uid or gid. */
static inline uint32_t mid_cache_hash_id(uint32_t id)
{
	return id * 2654435761u;
}

/* ---- reader ---- */

struct mid_cache {
	const uint8_t *map;
	size_t size;
	dev_t dev;
	ino_t ino;
	const struct mid_cache_header *header;
};

/* Maps and validates the header of the cache at path. Returns 0, -ENOENT,
 * -EBADMSG for a file that is not a valid cache, or another -errno. */
MID_MUST_CHECK int mid_cache_open(const char *path, struct mid_cache *ret);
void mid_cache_close(struct mid_cache *cache);
/* True once the publisher has replaced this file. */
bool mid_cache_is_stale(const struct mid_cache *cache);
/* Lookups return 0, -ENOENT (absent or expired at `now`) or -EBADMSG
 * (the record points outside the file). */
MID_MUST_CHECK int mid_cache_find_user_by_name(const struct mid_cache *cache, const char *name,
					       int64_t now, struct mid_cache_user_view *ret);
MID_MUST_CHECK int mid_cache_find_user_by_uid(const struct mid_cache *cache, uid_t uid,
					      int64_t now, struct mid_cache_user_view *ret);
MID_MUST_CHECK int mid_cache_find_group_by_name(const struct mid_cache *cache, const char *name,
						int64_t now, struct mid_cache_group_view *ret);
MID_MUST_CHECK int mid_cache_find_group_by_gid(const struct mid_cache *cache, gid_t gid,
					       int64_t now, struct mid_cache_group_view *ret);
/* Enumeration: the user at position i, or -ENOENT when expired, or -ERANGE
 * past the end. */
MID_MUST_CHECK int mid_cache_user_at(const struct mid_cache *cache, uint32_t i, int64_t now,
				     struct mid_cache_user_view *ret);
MID_MUST_CHECK int mid_cache_group_at(const struct mid_cache *cache, uint32_t i, int64_t now,
				      struct mid_cache_group_view *ret);
/* Returns 1 when the policy manages name, 0 when not, -EBADMSG on a
 * corrupt index. */
MID_MUST_CHECK int mid_cache_is_managed(const struct mid_cache *cache, const char *name);

/* ---- writer (mid-agentd only) ---- */

struct mid_cache_builder;

MID_MUST_CHECK int mid_cache_builder_new(struct mid_cache_builder **ret);
void mid_cache_builder_free(struct mid_cache_builder *b);
MID_MUST_CHECK int mid_cache_builder_add_user(struct mid_cache_builder *b, const char *name,
					      uid_t uid, gid_t gid, const char *gecos,
					      const char *dir, const char *shell, int64_t expires_at);
MID_MUST_CHECK int mid_cache_builder_add_group(struct mid_cache_builder *b, const char *name,
					       gid_t gid, int64_t expires_at);
MID_MUST_CHECK int mid_cache_builder_add_managed(struct mid_cache_builder *b, const char *name);
/* Writes the file next to path (mode 0644), fsyncs it, renames it over
 * path, fsyncs the directory and marks the replaced file stale. */
MID_MUST_CHECK int mid_cache_builder_publish(struct mid_cache_builder *b, const char *path,
					     uint64_t generation, int64_t now);

/* Changes for a builder kept between publishes, so that one change does
 * not rebuild the whole cache. A removed user's strings stay in the string
 * table until a new builder is made. They return -ENOENT for a name that
 * is not there. */
MID_MUST_CHECK int mid_cache_builder_remove_user(struct mid_cache_builder *b, const char *name);
MID_MUST_CHECK int mid_cache_builder_set_user_expiry(struct mid_cache_builder *b, const char *name,
						     int64_t expires_at);
/* Sets the expiry of group name, adding it when it is missing. Returns
 * -EEXIST when the name is there with another gid. */
MID_MUST_CHECK int mid_cache_builder_set_group_expiry(struct mid_cache_builder *b,
						      const char *name, gid_t gid,
						      int64_t expires_at);
/* The latest expiry of the users whose primary group is gid, 0 for none. */
int64_t mid_cache_builder_gid_expiry(const struct mid_cache_builder *b, gid_t gid);
uint32_t mid_cache_builder_n_users(const struct mid_cache_builder *b);
