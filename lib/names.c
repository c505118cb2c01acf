/* Validation of names and ids from untrusted input, and log escaping. */
#include "names.h"

#include <stdio.h>
#include <string.h>

#include "protocol.h"

bool name_is_valid(const char *name)
{
	size_t len;
	bool all_digits = true;

	if (!name)
		return false;
	len = strnlen(name, MID_NAME_MAX + 1);
	if (len == 0 || len > MID_NAME_MAX)
		return false;
	if (name[0] == '-' || name[0] == '.')
		return false;

	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
		if (c < '0' || c > '9')
			all_digits = false;
	}
	return !all_digits;
}

bool lease_id_is_valid(const char *id)
{
	if (!id || strnlen(id, MID_LEASE_ID_LEN + 1) != MID_LEASE_ID_LEN)
		return false;
	for (size_t i = 0; i < MID_LEASE_ID_LEN; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

static size_t escape_byte(unsigned char c, char piece[5])
{
	if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"')
		return (size_t)snprintf(piece, 5, "\\x%02x", c);
	piece[0] = (char)c;
	piece[1] = '\0';
	return 1;
}

char *text_escape(const char *text, char *out, size_t out_size)
{
	static const char ellipsis[] = "...";
	size_t needed = 0, o = 0, room;
	char piece[5];

	if (out_size == 0)
		return out;
	if (!text)
		text = "";

	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		needed += escape_byte(*p, piece);

	/* Text that does not fit is cut at a whole escape and marked. */
	room = needed < out_size ? out_size - 1 : out_size - 1 - (out_size > sizeof(ellipsis) ? 3 : 0);
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		size_t n = escape_byte(*p, piece);

		if (o + n > room)
			break;
		memcpy(out + o, piece, n);
		o += n;
	}
	if (needed >= out_size && out_size > sizeof(ellipsis)) {
		memcpy(out + o, ellipsis, 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
