dist_man_MANS += \
	man/mid-agentd.8 \
	man/midctl.1 \
	man/pam_mid.8 \
	man/mid.conf.5 \
	man/libnss_mid.8 man/mid-audit.5
