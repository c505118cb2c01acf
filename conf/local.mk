# Example configuration, installed as documentation: the agent reads its
# policy from the fixed path /etc/mid/mid.conf whatever --prefix says, so
# "make install" writes no live policy or PAM configuration.
confexamplesdir = $(docdir)/examples
dist_confexamples_DATA = \
	conf/mid.conf \
	conf/nsswitch.conf.example
pamexamplesdir = $(docdir)/examples/pam.d
dist_pamexamples_DATA = \
	conf/pam.d/sshd-mid \
	conf/pam.d/su-mid

# systemdsystemunitdir defaults to ${prefix}/lib/systemd/system, so the
# units stay under the prefix unless --with-systemdsystemunitdir moves them.
dist_systemdsystemunit_DATA = \
	conf/mid-agentd.socket \
	conf/mid-agentd.service
