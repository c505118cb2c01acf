# libmid: code every part shares, with no dependency beyond libc.
noinst_LTLIBRARIES += lib/libmid.la
lib_libmid_la_SOURCES = \
	lib/macro.h \
	lib/cursor.c lib/cursor.h \
	lib/protocol.c lib/protocol.h \
	lib/client.c lib/client.h \
	lib/cache.c lib/cache.h \
	lib/duration.c lib/duration.h \
	lib/names.c lib/names.h

# libmidagent: code only the agent and the tests need; it links libsodium.
noinst_LTLIBRARIES += lib/libmidagent.la
lib_libmidagent_la_SOURCES = \
	lib/token.c lib/token.h \
	lib/cache_writer.c \
	lib/netaddr.c lib/netaddr.h \
	lib/timewindow.c lib/timewindow.h
lib_libmidagent_la_CFLAGS = $(AM_CFLAGS) $(SODIUM_CFLAGS)
lib_libmidagent_la_LIBADD = lib/libmid.la $(SODIUM_LIBS)
