# Tests of crash safety, full-disk behaviour and the tamper-evident audit
# log. The C tests need cmocka; the full-disk test and audit_cli.sh need
# root (a private mount namespace, a tmpfs, a second user) and skip without.
TESTS += tests/audit/audit_cli.sh
EXTRA_DIST += tests/audit/audit_cli.sh

if HAVE_CMOCKA
check_PROGRAMS += tests/audit/test_store tests/audit/test_agent_audit tests/audit/test_crash \
	tests/audit/test_full_disk
TESTS += tests/audit/test_store tests/audit/test_agent_audit tests/audit/test_crash \
	tests/audit/test_full_disk

AUDIT_TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SODIUM_CFLAGS) $(SQLITE_CFLAGS)
AUDIT_TEST_LIBS = lib/libmidagent.la lib/libmid.la $(CMOCKA_LIBS) $(SODIUM_LIBS) $(SQLITE_LIBS)

tests_audit_test_store_SOURCES = tests/audit/test_store.c agentd/store.c agentd/store.h \
	agentd/log.c agentd/log.h
tests_audit_test_store_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/agentd
tests_audit_test_store_CFLAGS = $(AUDIT_TEST_CFLAGS) $(SYSTEMD_CFLAGS)
tests_audit_test_store_LDADD = $(AUDIT_TEST_LIBS) $(SYSTEMD_LIBS) -ldl

tests_audit_test_agent_audit_SOURCES = tests/audit/test_agent_audit.c tests/harness.c \
	tests/harness.h
tests_audit_test_agent_audit_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_audit_test_agent_audit_CFLAGS = $(AUDIT_TEST_CFLAGS)
tests_audit_test_agent_audit_LDADD = $(AUDIT_TEST_LIBS)

tests_audit_test_crash_SOURCES = tests/audit/test_crash.c tests/harness.c tests/harness.h
tests_audit_test_crash_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_audit_test_crash_CFLAGS = $(AUDIT_TEST_CFLAGS)
tests_audit_test_crash_LDADD = $(AUDIT_TEST_LIBS)

tests_audit_test_full_disk_SOURCES = tests/audit/test_full_disk.c tests/harness.c \
	tests/harness.h
tests_audit_test_full_disk_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests
tests_audit_test_full_disk_CFLAGS = $(AUDIT_TEST_CFLAGS)
tests_audit_test_full_disk_LDADD = $(AUDIT_TEST_LIBS)
endif
