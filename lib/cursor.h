/* Bounded reader and writer over a byte buffer. Every untrusted frame is
 * decoded through struct cursor: each read checks the remaining length
 * first, and the first failure sticks, so a chain of reads needs one check
 * at the end. Integers are little-endian on the wire. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"

struct cursor {
	const uint8_t *data;
	size_t size;
	size_t pos;
	int error; /* 0, -EBADMSG (short or malformed) or -EMSGSIZE (too large) */
};

void cursor_init(struct cursor *c, const void *data, size_t size);
uint8_t cursor_get_u8(struct cursor *c);
uint16_t cursor_get_u16(struct cursor *c);
uint32_t cursor_get_u32(struct cursor *c);
int64_t cursor_get_i64(struct cursor *c);
/* Reads a string of at most max_len bytes, prefixed by a u16 length. The
 * result points into the buffer and is not NUL-terminated; a NUL byte
 * inside it is malformed. */
void cursor_get_str(struct cursor *c, size_t max_len, const char **ret, size_t *ret_len);
/* Copies such a string into out (out_size includes the terminating NUL). */
void cursor_get_cstr(struct cursor *c, char *out, size_t out_size);
/* Returns 0 when every read succeeded and no byte is left over. */
MID_MUST_CHECK int cursor_finish(const struct cursor *c);

struct writer {
	uint8_t *data;
	size_t size;
	size_t pos;
	int error; /* 0 or -EMSGSIZE */
};

void writer_init(struct writer *w, void *data, size_t size);
void writer_put_u8(struct writer *w, uint8_t v);
void writer_put_u16(struct writer *w, uint16_t v);
void writer_put_u32(struct writer *w, uint32_t v);
void writer_put_i64(struct writer *w, int64_t v);
void writer_put_bytes(struct writer *w, const void *p, size_t n);
/* Writes a u16-length-prefixed string; NULL writes an empty string. */
void writer_put_str(struct writer *w, const char *s);
void writer_put_strn(struct writer *w, const char *s, size_t n);
