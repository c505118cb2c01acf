/* nss_probe: looks a user up through libnss_mid.so.2 and prints the
 * result, for nss_setuid.sh, which installs a copy setuid root.
 *
 * Usage: nss_probe MODULE NAME
 * Prints "at_secure=N" (from getauxval(AT_SECURE)) and then one of
 * "success UID", "notfound", "unavail" or "status N". MODULE is a path
 * that dlopen loads: in a setuid program that is unsafe, which is why
 * this program is built for tests only and never installed. */
#include <dlfcn.h>
#include <errno.h>
#include <nss.h>
#include <pwd.h>
#include <stdio.h>
#include <sys/auxv.h>

typedef enum nss_status getpwnam_r_function(const char *name, struct passwd *pw, char *buffer,
					    size_t size, int *errnop);

int main(int argc, char **argv)
{
	getpwnam_r_function *getpwnam_r;
	char buffer[4096];
	struct passwd pw;
	enum nss_status status;
	void *module;
	int err = 0;

	if (argc != 3) {
		fprintf(stderr, "Usage: nss_probe MODULE NAME\n");
		return 2;
	}
	module = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!module) {
		fprintf(stderr, "nss_probe: cannot load %s: %s\n", argv[1], dlerror());
		return 1;
	}
	getpwnam_r = (getpwnam_r_function *)dlsym(module, "_nss_mid_getpwnam_r");
	if (!getpwnam_r) {
		fprintf(stderr, "nss_probe: %s does not export _nss_mid_getpwnam_r\n", argv[1]);
		return 1;
	}

	printf("at_secure=%lu\n", getauxval(AT_SECURE));
	status = getpwnam_r(argv[2], &pw, buffer, sizeof(buffer), &err);
	if (status == NSS_STATUS_SUCCESS)
		printf("success %u\n", (unsigned)pw.pw_uid);
	else if (status == NSS_STATUS_NOTFOUND)
		printf("notfound\n");
	else if (status == NSS_STATUS_UNAVAIL)
		printf("unavail\n");
	else
		printf("status %d\n", (int)status);
	return 0;
}
