/* Placeholder until these commands are written. */
#include "midctl.h"

int cmd_audit(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}

int cmd_report(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}
