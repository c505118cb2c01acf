/* Placeholder until these commands are written. */
#include "midctl.h"

int cmd_sessions(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}

int cmd_kill(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}
