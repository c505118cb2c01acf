pammod_LTLIBRARIES += pam_mid/pam_mid.la
pam_mid_pam_mid_la_SOURCES = pam_mid/pam_mid.c
pam_mid_pam_mid_la_CFLAGS = $(AM_CFLAGS) $(PAM_CFLAGS)
pam_mid_pam_mid_la_LIBADD = lib/libmid.la $(PAM_LIBS)
pam_mid_pam_mid_la_LDFLAGS = -module -avoid-version -shared -no-undefined \
	-Wl,--version-script=$(srcdir)/pam_mid/pam_mid.map
EXTRA_DIST += pam_mid/pam_mid.map
