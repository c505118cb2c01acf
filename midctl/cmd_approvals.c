/* Placeholder until these commands are written. */
#include "midctl.h"

int cmd_approve(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}

int cmd_deny(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}

int cmd_collect(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}

int cmd_requests(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}
