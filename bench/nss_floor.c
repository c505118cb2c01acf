/* libnss_floor.so.2: the cheapest possible NSS module. It returns one
 * fixed entry for any name or UID, so a lookup through it measures
 * glibc's own dispatch cost: the floor no module can go below. */
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

EXPORT enum nss_status _nss_floor_getpwnam_r(const char *name, struct passwd *pw, char *buf,
					     size_t len, int *errnop);
EXPORT enum nss_status _nss_floor_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len,
					     int *errnop);

static enum nss_status fill(struct passwd *pw, char *buf, size_t len, int *errnop)
{
	static const char strings[] = "floor\0x\0floor\0/\0/bin/sh";

	if (len < sizeof(strings)) {
		*errnop = ERANGE;
		return NSS_STATUS_TRYAGAIN;
	}
	memcpy(buf, strings, sizeof(strings));
	pw->pw_name = buf;
	pw->pw_passwd = buf + 6;
	pw->pw_gecos = buf + 8;
	pw->pw_dir = buf + 14;
	pw->pw_shell = buf + 16;
	pw->pw_uid = 4242;
	pw->pw_gid = 4242;
	return NSS_STATUS_SUCCESS;
}

enum nss_status _nss_floor_getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t len,
				      int *errnop)
{
	return fill(pw, buf, len, errnop);
}

enum nss_status _nss_floor_getpwuid_r(uid_t uid, struct passwd *pw, char *buf, size_t len,
				      int *errnop)
{
	return fill(pw, buf, len, errnop);
}
