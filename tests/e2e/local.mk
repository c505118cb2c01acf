TESTS += tests/e2e/sshd.sh
EXTRA_DIST += tests/e2e/sshd.sh
