if HAVE_PAMTEST
if HAVE_CMOCKA
check_PROGRAMS += tests/pam/test_pam
TESTS += tests/pam/test_pam
tests_pam_test_pam_SOURCES = tests/pam/test_pam.c tests/harness.c tests/harness.h
tests_pam_test_pam_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_pam_test_pam_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PAMTEST_CFLAGS) $(SODIUM_CFLAGS) \
	$(PAM_CFLAGS)
tests_pam_test_pam_LDADD = lib/libmidagent.la lib/libmid.la $(CMOCKA_LIBS) $(PAMTEST_LIBS) \
	$(SODIUM_LIBS) $(PAM_LIBS)
endif
endif
