/* Bounded reader and writer for wire frames. */
#include "cursor.h"

#include <string.h>

void cursor_init(struct cursor *c, const void *data, size_t size)
{
	c->data = data;
	c->size = size;
	c->pos = 0;
	c->error = 0;
}

static const uint8_t *cursor_take(struct cursor *c, size_t n)
{
	const uint8_t *p;

	if (c->error < 0)
		return NULL;
	if (n > c->size - c->pos) {
		c->error = -EBADMSG;
		return NULL;
	}
	p = c->data + c->pos;
	c->pos += n;
	return p;
}

uint8_t cursor_get_u8(struct cursor *c)
{
	const uint8_t *p = cursor_take(c, 1);

	return p ? p[0] : 0;
}

uint16_t cursor_get_u16(struct cursor *c)
{
	const uint8_t *p = cursor_take(c, 2);

	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t cursor_get_u32(struct cursor *c)
{
	const uint8_t *p = cursor_take(c, 4);

	if (!p)
		return 0;
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int64_t cursor_get_i64(struct cursor *c)
{
	uint64_t lo = cursor_get_u32(c);
	uint64_t hi = cursor_get_u32(c);

	return (int64_t)(lo | hi << 32);
}

void cursor_get_str(struct cursor *c, size_t max_len, const char **ret, size_t *ret_len)
{
	uint16_t len = cursor_get_u16(c);
	const uint8_t *p;

	*ret = "";
	*ret_len = 0;
	if (c->error < 0)
		return;
	if (len > max_len) {
		c->error = -EMSGSIZE;
		return;
	}
	p = cursor_take(c, len);
	if (!p)
		return;
	if (memchr(p, '\0', len)) {
		c->error = -EBADMSG;
		return;
	}
	*ret = (const char *)p;
	*ret_len = len;
}

void cursor_get_cstr(struct cursor *c, char *out, size_t out_size)
{
	const char *s;
	size_t len;

	cursor_get_str(c, out_size - 1, &s, &len);
	memcpy(out, s, len);
	out[len] = '\0';
}

int cursor_finish(const struct cursor *c)
{
	if (c->error < 0)
		return c->error;
	if (c->pos != c->size)
		return -EBADMSG;
	return 0;
}

void writer_init(struct writer *w, void *data, size_t size)
{
	w->data = data;
	w->size = size;
	w->pos = 0;
	w->error = 0;
}

void writer_put_bytes(struct writer *w, const void *p, size_t n)
{
	if (w->error < 0)
		return;
	if (n > w->size - w->pos) {
		w->error = -EMSGSIZE;
		return;
	}
	if (n > 0)
		memcpy(w->data + w->pos, p, n);
	w->pos += n;
}

void writer_put_u8(struct writer *w, uint8_t v)
{
	writer_put_bytes(w, &v, 1);
}

void writer_put_u16(struct writer *w, uint16_t v)
{
	uint8_t b[2] = {v & 0xff, v >> 8};

	writer_put_bytes(w, b, sizeof(b));
}

void writer_put_u32(struct writer *w, uint32_t v)
{
	uint8_t b[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};

	writer_put_bytes(w, b, sizeof(b));
}

void writer_put_i64(struct writer *w, int64_t v)
{
	writer_put_u32(w, (uint32_t)((uint64_t)v & 0xffffffffu));
	writer_put_u32(w, (uint32_t)((uint64_t)v >> 32));
}

void writer_put_strn(struct writer *w, const char *s, size_t n)
{
	if (n > UINT16_MAX) {
		w->error = -EMSGSIZE;
		return;
	}
	writer_put_u16(w, (uint16_t)n);
	writer_put_bytes(w, s, n);
}

void writer_put_str(struct writer *w, const char *s)
{
	writer_put_strn(w, s ? s : "", s ? strlen(s) : 0);
}
