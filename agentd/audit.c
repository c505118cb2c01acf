/* Reading, verifying and signing the audit log. */
#include "agent.h"

int audit_init(struct agent *a)
{
	return 0;
}

void audit_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		  struct mid_response *resp)
{
	reply(resp, MID_ERR_INVALID, "audit requests are not available yet");
}
