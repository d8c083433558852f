package partnercenter_test

import (
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
)

// The connector definition, as the sandbox's spec tests read it.
const definitionFile = "../../connectors/partnercenter/sandbox/testdata/partnercenterreferrals.swagger.json"

// createArgs maps each writable member of the definition's Referral to the
// argument of partnercenter_create_referral that sends it ("a.b[]" walks
// the argument schema: properties, [] = array items).
var createArgs = map[string]string{
	"/campaignId":                                                    "campaign_id",
	"/consent/consentToContact":                                      "consent.contact",
	"/consent/consentToToShareInfoWithOthers":                        "consent.share_info_with_others",
	"/consent/consentToShareReferralWithMicrosoftSellers":            "consent.share_with_microsoft_sellers",
	"/customerProfile/address/addressLine1":                          "customer.address.line1",
	"/customerProfile/address/addressLine2":                          "customer.address.line2",
	"/customerProfile/address/city":                                  "customer.address.city",
	"/customerProfile/address/country":                               "customer.country",
	"/customerProfile/address/postalCode":                            "customer.address.postal_code",
	"/customerProfile/address/region":                                "customer.address.region",
	"/customerProfile/address/state":                                 "customer.address.state",
	"/customerProfile/ids[]":                                         "customer.ids",
	"/customerProfile/name":                                          "customer.name",
	"/customerProfile/size":                                          "customer.size",
	"/customerProfile/team[]/contactPreference/disableNotifications": "customer.contacts[].disable_notifications",
	"/customerProfile/team[]/contactPreference/locale":               "customer.contacts[].locale",
	"/customerProfile/team[]/email":                                  "customer.contacts[].email",
	"/customerProfile/team[]/firstName":                              "customer.contacts[].first_name",
	"/customerProfile/team[]/lastName":                               "customer.contacts[].last_name",
	"/customerProfile/team[]/phoneNumber":                            "customer.contacts[].phone",
	"/details/closingDateTime":                                       "details.closing_date",
	"/details/currency":                                              "details.currency",
	"/details/customerAction":                                        "details.customer_action",
	"/details/customerRequestedContact":                              "details.customer_requested_contact",
	"/details/dealValue":                                             "details.value",
	"/details/notes":                                                 "details.notes",
	"/details/requirements/industries[]/id":                          "details.requirements.industries[]",
	"/details/requirements/products[]/id":                            "details.requirements.products[]",
	"/details/requirements/services[]/id":                            "details.requirements.services[]",
	"/details/requirements/solutions[]":                              "details.requirements.solutions[]",
	"/details/requirements/offers[]":                                 "details.requirements.offers[]",
	"/details/requirements/additionalRequirements":                   "details.requirements.attributes[].id",
	"/engagementId":                                                  "engagement_id",
	"/externalReferenceId":                                           "external_reference_id",
	"/inviteContext/assistanceRequestCode":                           "invite_context.assistance_request_code",
	"/inviteContext/invitedBy/organizationId":                        "invite_context.invited_by.organization_id",
	"/inviteContext/invitedBy/organizationName":                      "invite_context.invited_by.organization_name",
	"/inviteContext/notes":                                           "invite_context.notes",
	"/name":                                                          "name",
	"/qualification":                                                 "qualification",
	"/referralProgram":                                               "referral_program",
	"/salesStage":                                                    "sales_stage",
	"/status":                                                        "status",
	"/statusReason":                                                  "status_reason",
	"/substatus":                                                     "substatus",
	"/target[]/id":                                                   "target[].id",
	"/target[]/type":                                                 "target[].type",
	"/team[]/contactPreference/disableNotifications":                 "team[].disable_notifications",
	"/team[]/contactPreference/locale":                               "team[].locale",
	"/team[]/email":                                                  "team[].email",
	"/team[]/firstName":                                              "team[].first_name",
	"/team[]/lastName":                                               "team[].last_name",
	"/team[]/phoneNumber":                                            "team[].phone",
	"/type":                                                          "type",
}

// notWritable are the members of the Referral a partner does not set on a
// create, each with its reason. Registrations have their own tools
// (partnercenter_create_deal_registration, _update_deal_registration).
var notWritable = map[string]string{
	"/@odata.context":                "OData annotation of a reply",
	"/id":                            "assigned by Partner Center",
	"/eTag":                          "concurrency token assigned by Partner Center",
	"/createdDateTime":               "set by Partner Center",
	"/updatedDateTime":               "set by Partner Center",
	"/expirationDateTime":            "set by Partner Center (referrals expire on its schedule)",
	"/organizationId":                "the caller's organization, from the credential",
	"/organizationName":              "the caller's organization, from the credential",
	"/mpnId":                         "the caller's organization, from the credential",
	"/lastModifiedVia":               "audit field set by Partner Center",
	"/lastRunId":                     "audit field set by Partner Center",
	"/links/self/uri":                "hypermedia of a reply",
	"/links/self/method":             "hypermedia of a reply",
	"/links/relatedReferrals/uri":    "hypermedia of a reply",
	"/links/relatedReferrals/method": "hypermedia of a reply",
	"/trackingInfo/microsoftMsxId":   "Microsoft's own CRM id, set by Microsoft",
	"/tags[]":                        "read-only labels (models.go: Tags is read-only)",
	"/favorite":                      "a per-user UI flag of Partner Center's referral pages, not part of the deal",
	"/callToAction":                  "set by Partner Center for incoming referrals (values undocumented)",
	"/referralSource":                "set by Partner Center for incoming referrals (values undocumented)",
}

// patchArgs maps each PatchReferralById path to the argument of
// partnercenter_update_referral_fields that patches it.
var patchArgs = map[string]string{
	"/campaignId": "campaign_id",
	"/consent/consentToShareReferralWithMicrosoftSellers": "share_with_microsoft_sellers",
	"/customerProfile/team":                               "customer_contacts.op=replace",
	"/customerProfile/team/-":                             "customer_contacts.op=add",
	"/details/closingDateTime":                            "closing_date",
	"/details/currency":                                   "currency",
	"/details/dealValue":                                  "deal_value",
	"/details/notes":                                      "notes",
	"/details/requirements/solutions":                     "solutions.op=replace",
	"/details/requirements/solutions/-":                   "solutions.op=add",
	"/externalReferenceId":                                "external_reference_id",
	"/referralProgram":                                    "referral_program",
	"/salesStage":                                         "sales_stage",
	"/status":                                             "status",
	"/substatus":                                          "substatus",
	"/statusReason":                                       "status_reason",
	"/team":                                               "team.op=replace",
	"/team/-":                                             "team.op=add",
}

type defDoc struct {
	Paths       map[string]map[string]json.RawMessage `json:"paths"`
	Definitions map[string]map[string]any             `json:"definitions"`
}

func loadDefinition(t *testing.T) defDoc {
	t.Helper()
	raw, err := os.ReadFile(definitionFile)
	require.NoError(t, err)
	var d defDoc
	require.NoError(t, json.Unmarshal(raw, &d))
	return d
}

// leaves lists the definition's members, "/a/b" and "[]" for items, with
// whether they are read-only.
func leaves(prefix string, s map[string]any, out map[string]bool) {
	if props, ok := s["properties"].(map[string]any); ok && s["type"] != "string" {
		if len(props) > 0 && prefix != "/details/requirements/additionalRequirements" {
			for k, v := range props {
				leaves(prefix+"/"+k, v.(map[string]any), out)
			}
			return
		}
	}
	if s["type"] == "array" {
		if items, ok := s["items"].(map[string]any); ok {
			leaves(prefix+"[]", items, out)
			return
		}
	}
	ro, _ := s["readOnly"].(bool)
	out[prefix] = ro
}

// schemaAt walks an argument path in a tool's full input schema.
func schemaAt(schema map[string]any, path string) map[string]any {
	cur := schema
	for _, seg := range strings.Split(path, ".") {
		name, arr := strings.CutSuffix(seg, "[]")
		props, _ := cur["properties"].(map[string]any)
		next, _ := props[name].(map[string]any)
		if next == nil {
			return nil
		}
		if arr {
			if next["type"] != "array" {
				return nil
			}
			next, _ = next["items"].(map[string]any)
			if next == nil {
				return nil
			}
		}
		cur = next
	}
	return cur
}

func inputSchemas(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, tl := range pctools.Tools(nil) {
		var s map[string]any
		require.NoError(t, json.Unmarshal(tl.InputSchema, &s))
		out[tl.Name] = s
	}
	return out
}

// Every writable member of the definition's Referral can be sent by
// partnercenter_create_referral.
func TestEveryWritableMemberHasAnArgument(t *testing.T) {
	def := loadDefinition(t)
	all := map[string]bool{}
	leaves("", def.Definitions[referralDefinition], all)
	schema := inputSchemas(t)["partnercenter_create_referral"]
	var writable, reachable int
	var missing []string
	for member, ro := range all {
		if ro || strings.HasPrefix(member, "/registrations") || notWritable[member] != "" {
			continue
		}
		writable++
		arg, ok := createArgs[member]
		if !ok || schemaAt(schema, arg) == nil {
			missing = append(missing, member+" → "+arg)
			continue
		}
		reachable++
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "writable members with no argument of partnercenter_create_referral")
	for m := range createArgs {
		_, ok := all[m]
		assert.True(t, ok, "%s is not a member of the definition", m)
	}
	for m := range notWritable {
		_, ok := all[m]
		assert.True(t, ok, "exception %s is not a member of the definition", m)
	}
	t.Logf("writable members reachable: %d/%d (exceptions: %d)", reachable, writable, len(notWritable))
}

const referralDefinition = "Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.Referral"

// Every path of PatchReferralById, with each op the definition allows
// where it applies, is reachable through partnercenter_update_referral_fields.
func TestEveryPatchPathHasAnArgument(t *testing.T) {
	def := loadDefinition(t)
	var ops struct {
		Items struct {
			Properties struct {
				Op   struct{ Enum []string } `json:"op"`
				Path struct{ Enum []string } `json:"path"`
			} `json:"properties"`
		} `json:"items"`
	}
	raw, err := json.Marshal(def.Definitions["Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.UpdateReferralDetails"])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &ops))
	paths := ops.Items.Properties.Path.Enum
	require.Len(t, paths, 18)
	assert.ElementsMatch(t, paths, pc.PatchPaths, "the client knows the definition's paths")
	assert.ElementsMatch(t, []string{"replace", "add"}, ops.Items.Properties.Op.Enum, "no remove in the definition")

	schema := inputSchemas(t)["partnercenter_update_referral_fields"]
	reachable := 0
	for _, p := range paths {
		arg, ok := patchArgs[p]
		if !assert.True(t, ok, "PATCH path %s has no argument", p) {
			continue
		}
		field, op, withOp := strings.Cut(arg, ".op=")
		s := schemaAt(schema, field)
		if !assert.NotNil(t, s, "%s: argument %s is not in the schema", p, field) {
			continue
		}
		if withOp {
			enum, _ := schemaAt(schema, field+".op")["enum"].([]any)
			if !assert.Contains(t, enum, op, "%s: %s.op has no %s", p, field, op) {
				continue
			}
			assert.Contains(t, ops.Items.Properties.Op.Enum, op)
		}
		reachable++
	}
	t.Logf("PATCH paths reachable: %d/%d", reachable, len(paths))
}
