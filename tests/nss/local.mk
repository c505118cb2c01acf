# Tests of the NSS cache and of libnss_mid.so.2. mkcache writes caches
# for the shell test and for manual checks.
check_PROGRAMS += tests/nss/mkcache
tests_nss_mkcache_SOURCES = tests/nss/mkcache.c
tests_nss_mkcache_LDADD = lib/libmidagent.la

TESTS += tests/nss/nss_wrapper.sh
EXTRA_DIST += tests/nss/nss_wrapper.sh

if HAVE_CMOCKA
check_PROGRAMS += tests/nss/test_cache tests/nss/test_nss_module
TESTS += tests/nss/test_cache tests/nss/test_nss_module

tests_nss_test_cache_SOURCES = tests/nss/test_cache.c
tests_nss_test_cache_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_nss_test_cache_LDADD = lib/libmidagent.la $(CMOCKA_LIBS)

tests_nss_test_nss_module_SOURCES = tests/nss/test_nss_module.c
tests_nss_test_nss_module_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_nss_test_nss_module_LDADD = lib/libmidagent.la $(CMOCKA_LIBS) -ldl -lpthread
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/nss/test_publish
TESTS += tests/nss/test_publish
tests_nss_test_publish_SOURCES = tests/nss/test_publish.c tests/harness.c tests/harness.h
tests_nss_test_publish_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_nss_test_publish_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS)
tests_nss_test_publish_LDADD = lib/libmidagent.la lib/libmid.la $(CMOCKA_LIBS) $(SODIUM_LIBS)
endif
