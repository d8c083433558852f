package partnercenter

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidArgument marks a request the client refused before sending it.
var ErrInvalidArgument = errors.New("partnercenter: invalid argument")

// ErrInvalidTransition marks a referral status change the documented state
// machine does not allow.
var ErrInvalidTransition = errors.New("partnercenter: status transition not allowed")

// PatchPaths are the paths a referral patch may touch
// (PatchReferralById in the connector definition).
var PatchPaths = []string{
	"/campaignId",
	"/consent/consentToShareReferralWithMicrosoftSellers",
	"/customerProfile/team",
	"/customerProfile/team/-",
	"/details/closingDateTime",
	"/details/currency",
	"/details/dealValue",
	"/details/notes",
	"/details/requirements/solutions",
	"/details/requirements/solutions/-",
	"/externalReferenceId",
	"/referralProgram",
	"/salesStage",
	"/status",
	"/substatus",
	"/statusReason",
	"/team",
	"/team/-",
}

// RegistrationPatchPaths are the paths a deal registration patch may touch
// (PatchDealRegistrationByReferralId in the connector definition).
var RegistrationPatchPaths = []string{
	"/registrations/0/contract/startDateTime",
	"/registrations/0/contract/endDateTime",
	"/registrations/0/contract/signDateTime",
	"/registrations/0/contract/term",
	"/registrations/0/contract/value",
	"/registrations/0/solutionDetails/0/value",
	"/registrations/0/solutionDetails/0/currency",
	"/registrations/0/solutionDetails/0/isDeployedOnAzure",
	"/registrations/0/solutionDetails/0/primaryDeploymentOn",
	"/registrations/0/solutionDetails/0/pricingModel",
	"/registrations/0/solutionDetails/0/marketplaceTransactionDetails/isMarketplaceTransacted",
	"/registrations/0/solutionDetails/0/marketplaceTransactionDetails/marketplaceTransactionDateTime",
}

// transitions is the documented referral state machine: the statuses a
// referral in a status may move to.
var transitions = map[string][]string{
	StatusNew:    {StatusNew, StatusActive, StatusClosed},
	StatusActive: {StatusActive, StatusClosed},
	StatusClosed: {StatusClosed},
}

// substatuses are the substatuses allowed with each status.
var substatuses = map[string][]string{
	StatusNew:    {SubstatusPending, SubstatusReceived},
	StatusActive: {SubstatusAccepted},
	StatusClosed: {SubstatusWon, SubstatusLost, SubstatusDeclined, SubstatusExpired},
}

// statusOrder lists the statuses with transitions, for messages.
var statusOrder = []string{StatusNew, StatusActive, StatusClosed}

// canonical returns the member of set equal to s ignoring case.
func canonical(s string, set []string) (string, bool) {
	for _, v := range set {
		if strings.EqualFold(s, v) {
			return v, true
		}
	}
	return "", false
}

// CheckTransition reports whether a referral in fromStatus may move to
// toStatus with toSubstatus, per the documented state machine:
//
//	New    → New, Active, Closed
//	Active → Active, Closed
//	Closed → Closed (terminal)
//
// with substatus Pending or Received for New, Accepted for Active, and Won,
// Lost, Declined or Expired for Closed. Statuses compare case-insensitively.
// toSubstatus may be empty only when the status does not change. The error
// wraps ErrInvalidTransition and names the allowed moves.
func CheckTransition(fromStatus, toStatus, toSubstatus string) error {
	from, ok := canonical(fromStatus, statusOrder)
	if !ok {
		return fmt.Errorf("%w: current status %q has no documented transitions (known: %s)",
			ErrInvalidTransition, fromStatus, strings.Join(statusOrder, ", "))
	}
	allowed := transitions[from]
	to, ok := canonical(toStatus, statusOrder)
	if !ok || !slices.Contains(allowed, to) {
		return fmt.Errorf("%w: a %s referral cannot move to %q%s; allowed: %s",
			ErrInvalidTransition, from, toStatus, terminalNote(from), describeMoves(allowed))
	}
	if toSubstatus == "" {
		if to == from {
			return nil
		}
		return fmt.Errorf("%w: moving a referral from %s to %s needs a substatus: one of %s",
			ErrInvalidTransition, from, to, strings.Join(substatuses[to], ", "))
	}
	if _, ok := canonical(toSubstatus, substatuses[to]); !ok {
		return fmt.Errorf("%w: substatus %q is not allowed with status %s; allowed: %s",
			ErrInvalidTransition, toSubstatus, to, strings.Join(substatuses[to], ", "))
	}
	return nil
}

func terminalNote(from string) string {
	if len(transitions[from]) == 1 {
		return " (" + from + " is terminal)"
	}
	return ""
}

// describeMoves renders statuses with their substatuses, e.g.
// "Active (Accepted), Closed (Won, Lost, Declined, Expired)".
func describeMoves(statuses []string) string {
	parts := make([]string, len(statuses))
	for i, s := range statuses {
		parts[i] = s + " (" + strings.Join(substatuses[s], ", ") + ")"
	}
	return strings.Join(parts, ", ")
}

// CheckPatch reports whether every operation is a "replace" or an "add" on
// one of the allowed paths (PatchPaths or RegistrationPatchPaths), and an
// "add" where the path is the end of a list ("…/-"). The error wraps
// ErrInvalidArgument.
func CheckPatch(ops []PatchOp, allowed []string) error {
	if len(ops) == 0 {
		return fmt.Errorf("%w: a patch needs at least one operation", ErrInvalidArgument)
	}
	for i, op := range ops {
		if op.Op != OpReplace && op.Op != OpAdd {
			return fmt.Errorf("%w: operation %d: op %q is not supported; use %q or %q",
				ErrInvalidArgument, i, op.Op, OpReplace, OpAdd)
		}
		if !slices.Contains(allowed, op.Path) {
			return fmt.Errorf("%w: operation %d: path %q cannot be patched; allowed: %s",
				ErrInvalidArgument, i, op.Path, strings.Join(allowed, ", "))
		}
		if strings.HasSuffix(op.Path, "/-") && op.Op != OpAdd {
			return fmt.Errorf("%w: operation %d: path %q (the end of a list) needs op %q",
				ErrInvalidArgument, i, op.Path, OpAdd)
		}
	}
	return nil
}
