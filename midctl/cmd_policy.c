/* Placeholder until these commands are written. */
#include "midctl.h"

int cmd_unlock(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}

int cmd_reload(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}

int cmd_explain(const struct options *o, int argc, char **argv)
{
	return usage_error("%s is not available yet", argv[0]);
}
