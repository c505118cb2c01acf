# libnss_mid.so.2, the NSS module. It is loaded into every process that
# resolves a user, so it contains only the cache reader, not all of
# libmid: nothing in it can reach the agent's socket, and it needs nothing
# beyond libc. Its version script exports only the _nss_mid_* entry points.
# libtool names it libnss_mid.so.2 because of -version-number 2.
lib_LTLIBRARIES += nss_mid/libnss_mid.la
nss_mid_libnss_mid_la_SOURCES = nss_mid/nss_mid.c lib/cache.c lib/cache.h lib/macro.h
nss_mid_libnss_mid_la_LDFLAGS = $(AM_LDFLAGS) -module -shared -version-number 2 \
	-Wl,--version-script=$(srcdir)/nss_mid/nss_mid.map -Wl,-z,nodelete
nss_mid_libnss_mid_la_DEPENDENCIES = $(srcdir)/nss_mid/nss_mid.map
# Fails the link on any undefined symbol, such as one from libsodium. The
# sanitizer runtimes leave symbols undefined on purpose.
if !ENABLE_SANITIZERS
nss_mid_libnss_mid_la_LDFLAGS += -Wl,-z,defs
endif
EXTRA_DIST += nss_mid/nss_mid.map

# glibc loads libnss_mid.so.2 by its soname, and PAM loads pam_mid.so:
# the libtool archives and the development symlink would only mislead.
install-exec-hook:
	rm -f $(DESTDIR)$(libdir)/libnss_mid.la $(DESTDIR)$(libdir)/libnss_mid.so
	rm -f $(DESTDIR)$(pammoddir)/pam_mid.la

# The install hook removed the libtool archives that libtool's uninstall
# mode reads, so the installed libraries are removed by name.
uninstall-local:
	rm -f $(DESTDIR)$(libdir)/libnss_mid.so.2 $(DESTDIR)$(libdir)/libnss_mid.so.2.*
	rm -f $(DESTDIR)$(pammoddir)/pam_mid.so
