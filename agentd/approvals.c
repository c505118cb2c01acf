/* Approval of credential requests. */
#include "agent.h"

int approvals_init(struct agent *a)
{
	return 0;
}

int approval_intercept_issue(struct agent *a, const struct peer *peer, const struct rule *rule,
			     const struct mid_request *req, struct mid_response *resp)
{
	if (!rule->approval.enabled)
		return 0;
	/* TODO: pending requests; until then a rule that needs approval issues nothing. */
	reply(resp, MID_ERR_DENIED, "%s needs approval, which this agent cannot record yet",
	      rule->name);
	return 1;
}

void approvals_handle(struct agent *a, const struct peer *peer, const struct mid_request *req,
		      struct mid_response *resp)
{
	reply(resp, MID_ERR_INVALID, "approvals are not available yet");
}
