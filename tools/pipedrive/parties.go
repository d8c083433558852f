package pipedrive

import (
	"context"
	"encoding/json"
	"net/mail"
	"slices"
	"strings"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// The customer's side of a deal: organizations, persons (contacts) and
// their notes (notes.go). Custom fields of organizations and persons are
// not offered: the custom field cache knows deal fields only.

// partyTools returns the tools of organizations, persons and notes.
func (s *service) partyTools() []tools.Tool {
	return append([]tools.Tool{
		newTool(s, tools.Spec{
			Name: "pipedrive_search_organizations", Title: "Search organizations", Toolset: Toolset, Operation: "SearchOrganizations",
			ReadOnly: true, Idempotent: true,
			Description: "Find organizations by name (or by fields). While has_more, pass next_cursor as cursor.",
		}, s.searchOrganizations),
		newTool(s, tools.Spec{
			Name: "pipedrive_get_organization", Title: "Get organization", Toolset: Toolset, Operation: "GetOrganization",
			ReadOnly: true, Idempotent: true,
			Description: "Get a Pipedrive organization by id, with its address, website and owner.",
		}, s.getOrganization),
		newTool(s, tools.Spec{
			Name: "pipedrive_add_organization", Title: "Add organization", Toolset: Toolset, Operation: "AddOrganization",
			Description: "Create an organization, e.g. a referral's customer. Names need not be unique: search first.",
			Creates:     createsOrganization,
		}, s.addOrganization),
		newTool(s, tools.Spec{
			Name: "pipedrive_update_organization", Title: "Update organization", Toolset: Toolset, Operation: "UpdateOrganization",
			Idempotent: true, Destructive: true,
			Description: "Change an organization's name, address, website or owner; what is not given stays.",
		}, s.updateOrganization),
		newTool(s, tools.Spec{
			Name: "pipedrive_search_persons", Title: "Search persons", Toolset: Toolset, Operation: "SearchPersons",
			ReadOnly: true, Idempotent: true,
			Description: "Find persons (contacts) by name, email or phone. While has_more, pass next_cursor as cursor.",
		}, s.searchPersons),
		newTool(s, tools.Spec{
			Name: "pipedrive_get_person", Title: "Get person", Toolset: Toolset, Operation: "GetPerson",
			ReadOnly: true, Idempotent: true,
			Description: "Get a Pipedrive person (contact) by id, with emails, phones, organization and owner.",
		}, s.getPerson),
		newTool(s, tools.Spec{
			Name: "pipedrive_add_person", Title: "Add person", Toolset: Toolset, Operation: "AddPerson",
			Description: "Create a person (contact); the first email and phone are primary. Search first to avoid duplicates.",
			Creates:     createsPerson,
		}, s.addPerson),
		newTool(s, tools.Spec{
			Name: "pipedrive_update_person", Title: "Update person", Toolset: Toolset, Operation: "UpdatePerson",
			Idempotent: true, Destructive: true,
			Description: "Change a person's name, organization, owner, emails or phones; a list replaces the old one.",
		}, s.updatePerson),
	}, s.noteTools()...)
}

var (
	createsOrganization = &tools.Creates{Record: "organization",
		Check: "search for its name with pipedrive_search_organizations (exact_match true)"}
	createsPerson = &tools.Creates{Record: "person",
		Check: "search for its email or name with pipedrive_search_persons"}
)

// Search

// SearchOrganizationsArgs are the arguments of pipedrive_search_organizations.
type SearchOrganizationsArgs struct {
	Term       string   `json:"term" jsonschema:"minLength=1"`
	Fields     []string `json:"fields,omitempty" jsonschema:"enum=name,enum=address,enum=notes,enum=custom_fields"`
	ExactMatch bool     `json:"exact_match,omitempty"`
	Limit      int      `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100" jsonschema_description:"Default 20."`
	Cursor     string   `json:"cursor,omitempty"`
}

// Organization is an organization as tools return it.
type Organization struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Address   string `json:"address,omitempty"`
	Website   string `json:"website,omitempty"`
	OwnerID   int64  `json:"owner_id,omitempty"`
	OwnerName string `json:"owner_name,omitempty"`
	// IsDeleted marks an organization deleted within the last 30 days.
	IsDeleted bool `json:"deleted,omitempty"`
}

// OrganizationList is a page of organizations found.
type OrganizationList struct {
	Organizations []Organization `json:"organizations"`
	HasMore       bool           `json:"has_more"`
	NextCursor    string         `json:"next_cursor,omitempty"`
}

func (s *service) searchOrganizations(ctx context.Context, in SearchOrganizationsArgs) (OrganizationList, error) {
	c, ref := s.at(ctx)
	term, err := searchTerm(in.Term, in.ExactMatch)
	if err != nil {
		return OrganizationList{}, err
	}
	hits, resp, err := c.SearchOrganizationsWith(ctx, pd.SearchOrganizationsParams{
		Term: term, Fields: searchFields(in.Fields, "name"), ExactMatch: in.ExactMatch, Limit: orDefault(in.Limit, 20), Cursor: in.Cursor,
	})
	if err != nil {
		return OrganizationList{}, err
	}
	snap, _ := ref.get(ctx, false) // owner names are best effort
	out := OrganizationList{Organizations: make([]Organization, 0, len(hits)), NextCursor: resp.NextCursor, HasMore: resp.NextCursor != ""}
	for _, h := range hits {
		it := h.Item
		ref.rememberOrg(it.ID, it.Name)
		out.Organizations = append(out.Organizations, Organization{ID: it.ID, Name: it.Name, Address: it.Address,
			OwnerID: it.Owner.ID, OwnerName: snap.users[it.Owner.ID]})
	}
	return out, nil
}

// SearchPersonsArgs are the arguments of pipedrive_search_persons.
type SearchPersonsArgs struct {
	Term       string   `json:"term" jsonschema:"minLength=1"`
	Fields     []string `json:"fields,omitempty" jsonschema:"enum=name,enum=email,enum=phone,enum=notes,enum=custom_fields"`
	OrgID      int64    `json:"org_id,omitempty" jsonschema:"minimum=1"`
	ExactMatch bool     `json:"exact_match,omitempty"`
	Limit      int      `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100" jsonschema_description:"Default 20."`
	Cursor     string   `json:"cursor,omitempty"`
}

// Person is a person (contact) as tools return it: emails and phones as
// plain values, the primary one first.
type Person struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Emails    []string `json:"emails,omitempty"`
	Phones    []string `json:"phones,omitempty"`
	JobTitle  string   `json:"job_title,omitempty"`
	OrgID     int64    `json:"org_id,omitempty"`
	OrgName   string   `json:"org_name,omitempty"`
	OwnerID   int64    `json:"owner_id,omitempty"`
	OwnerName string   `json:"owner_name,omitempty"`
	// IsDeleted marks a person deleted within the last 30 days.
	IsDeleted bool `json:"deleted,omitempty"`
}

// PersonList is a page of persons found.
type PersonList struct {
	Persons    []Person `json:"persons"`
	HasMore    bool     `json:"has_more"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

func (s *service) searchPersons(ctx context.Context, in SearchPersonsArgs) (PersonList, error) {
	c, ref := s.at(ctx)
	term, err := searchTerm(in.Term, in.ExactMatch)
	if err != nil {
		return PersonList{}, err
	}
	hits, resp, err := c.SearchPersons(ctx, pd.SearchPersonsParams{
		Term: term, Fields: searchFields(in.Fields, "name,email,phone"), ExactMatch: in.ExactMatch,
		OrganizationID: in.OrgID, Limit: orDefault(in.Limit, 20), Cursor: in.Cursor,
	})
	if err != nil {
		return PersonList{}, err
	}
	snap, _ := ref.get(ctx, false)
	out := PersonList{Persons: make([]Person, 0, len(hits)), NextCursor: resp.NextCursor, HasMore: resp.NextCursor != ""}
	for _, h := range hits {
		it := h.Item
		ref.rememberPerson(it.ID, it.Name)
		p := Person{ID: it.ID, Name: it.Name, Emails: it.Emails, Phones: it.Phones, OwnerID: it.Owner.ID, OwnerName: snap.users[it.Owner.ID]}
		if o := it.Organization; o != nil {
			p.OrgID, p.OrgName = o.ID, o.Name
			ref.rememberOrg(o.ID, o.Name)
		}
		out.Persons = append(out.Persons, p)
	}
	return out, nil
}

// searchTerm checks a search term as Pipedrive will: at least 2
// characters, or 1 for an exact match.
func searchTerm(term string, exact bool) (string, error) {
	term = strings.TrimSpace(term)
	if n := len([]rune(term)); n == 0 || n < 2 && !exact {
		return "", tools.InvalidArgument("term", "term needs at least 2 characters (1 with exact_match)")
	}
	return term, nil
}

// searchFields joins the fields to search, def when none are given.
func searchFields(fields []string, def string) string {
	if len(fields) == 0 {
		return def
	}
	return strings.Join(slices.Compact(slices.Sorted(slices.Values(fields))), ",")
}

func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// Organizations

// GetOrganizationArgs are the arguments of pipedrive_get_organization.
type GetOrganizationArgs struct {
	OrgID int64 `json:"org_id" jsonschema:"minimum=1"`
	Full  bool  `json:"full,omitempty" jsonschema_description:"Also return details."`
}

// OrganizationRecord is an organization as pipedrive_get_organization
// returns it: with full, its details too.
type OrganizationRecord struct {
	Organization
	Details *OrganizationDetails `json:"details,omitempty"`
}

// OrganizationDetails are the members of an organization that the compact
// result leaves out. Custom fields are keyed by field code.
type OrganizationDetails struct {
	AddressParts  *AddressParts  `json:"address_parts,omitempty"`
	Linkedin      string         `json:"linkedin,omitempty"`
	Industry      int64          `json:"industry,omitempty"`
	AnnualRevenue int64          `json:"annual_revenue,omitempty"`
	EmployeeCount int64          `json:"employee_count,omitempty"`
	VisibleTo     string         `json:"visible_to,omitempty"`
	LabelIDs      []int64        `json:"label_ids,omitempty"`
	AddTime       string         `json:"add_time,omitempty"`
	UpdateTime    string         `json:"update_time,omitempty"`
	CustomFields  map[string]any `json:"custom_fields,omitempty"`
}

func (s *service) getOrganization(ctx context.Context, in GetOrganizationArgs) (OrganizationRecord, error) {
	c, ref := s.at(ctx)
	o, err := c.GetOrganization(ctx, in.OrgID)
	if err != nil {
		return OrganizationRecord{}, err
	}
	out := OrganizationRecord{Organization: shapeOrganization(ctx, ref, *o)}
	if in.Full {
		out.Details = &OrganizationDetails{
			AddressParts: addressParts(o.Address), Linkedin: o.Linkedin, Industry: o.Industry, AnnualRevenue: o.AnnualRevenue,
			EmployeeCount: o.EmployeeCount, VisibleTo: visibilityLabel(o.VisibleTo), LabelIDs: o.LabelIDs,
			AddTime: o.AddTime, UpdateTime: o.UpdateTime, CustomFields: setValues(o.CustomFields),
		}
	}
	return out, nil
}

// AddressParts are the parts of an organization's address (the compact
// result has it in one line).
type AddressParts struct {
	StreetNumber    string `json:"street_number,omitempty"`
	Route           string `json:"route,omitempty"`
	Subpremise      string `json:"subpremise,omitempty"`
	Sublocality     string `json:"sublocality,omitempty"`
	Locality        string `json:"locality,omitempty"`
	AdminAreaLevel2 string `json:"admin_area_level_2,omitempty"`
	AdminAreaLevel1 string `json:"admin_area_level_1,omitempty"`
	PostalCode      string `json:"postal_code,omitempty"`
	Country         string `json:"country,omitempty"`
}

// addressParts returns the parts of an address, nil when it has none.
func addressParts(a *pd.Address) *AddressParts {
	if a == nil {
		return nil
	}
	p := AddressParts{StreetNumber: a.StreetNumber, Route: a.Route, Subpremise: a.Subpremise, Sublocality: a.Sublocality,
		Locality: a.Locality, AdminAreaLevel2: a.AdminAreaLevel2, AdminAreaLevel1: a.AdminAreaLevel1, PostalCode: a.PostalCode, Country: a.Country}
	if p == (AddressParts{}) {
		return nil
	}
	return &p
}

// setValues are the custom field values that are set, by field code.
func setValues(raw map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	for code, v := range raw {
		var val any
		if json.Unmarshal(v, &val) == nil && val != nil && val != "" {
			out[code] = val
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// AddOrganizationArgs are the arguments of pipedrive_add_organization.
type AddOrganizationArgs struct {
	Name    string `json:"name" jsonschema:"minLength=1"`
	Address string `json:"address,omitempty" jsonschema_description:"Postal address, one line."`
	Website string `json:"website,omitempty"`
	OwnerID int64  `json:"owner_id,omitempty" jsonschema:"minimum=1" jsonschema_description:"Default: the token's user."`
}

// UpdateOrganizationArgs are the arguments of pipedrive_update_organization.
type UpdateOrganizationArgs struct {
	OrgID   int64  `json:"org_id" jsonschema:"minimum=1"`
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
	Website string `json:"website,omitempty"`
	OwnerID int64  `json:"owner_id,omitempty" jsonschema:"minimum=1"`
}

func (s *service) addOrganization(ctx context.Context, in AddOrganizationArgs) (Organization, error) {
	c, ref := s.at(ctx)
	if strings.TrimSpace(in.Name) == "" {
		return Organization{}, tools.InvalidArgument("name", "name must not be blank")
	}
	body, err := orgInput(in.Name, in.Address, in.Website, in.OwnerID)
	if err != nil {
		return Organization{}, err
	}
	if err := checkUser(ctx, ref, "owner_id", in.OwnerID); err != nil {
		return Organization{}, err
	}
	o, err := c.AddOrganization(ctx, body)
	if err != nil {
		return Organization{}, err
	}
	if o.ID == 0 {
		return Organization{}, noID("organization")
	}
	return shapeOrganization(ctx, ref, *o), nil
}

func (s *service) updateOrganization(ctx context.Context, in UpdateOrganizationArgs) (Organization, error) {
	c, ref := s.at(ctx)
	if in.Name == "" && in.Address == "" && in.Website == "" && in.OwnerID == 0 {
		return Organization{}, tools.InvalidArgument("", "nothing to change: give name, address, website or owner_id")
	}
	if in.Name != "" && strings.TrimSpace(in.Name) == "" {
		return Organization{}, tools.InvalidArgument("name", "name must not be blank")
	}
	body, err := orgInput(in.Name, in.Address, in.Website, in.OwnerID)
	if err != nil {
		return Organization{}, err
	}
	if err := checkUser(ctx, ref, "owner_id", in.OwnerID); err != nil {
		return Organization{}, err
	}
	o, err := c.UpdateOrganization(ctx, in.OrgID, body)
	if err != nil {
		return Organization{}, err
	}
	return shapeOrganization(ctx, ref, *o), nil
}

// orgInput is the body of an organization write; empty arguments are not
// sent.
func orgInput(name, address, website string, ownerID int64) (pd.OrganizationInput, error) {
	in := pd.OrganizationInput{Name: opt(strings.TrimSpace(name)), Website: opt(strings.TrimSpace(website)), OwnerID: opt(ownerID)}
	if a := strings.TrimSpace(address); a != "" {
		in.Address = &pd.Address{Value: a}
	}
	if in.Website != nil && strings.ContainsFunc(*in.Website, func(r rune) bool { return r <= ' ' }) {
		return in, tools.InvalidArgument("website", "website must be one address without spaces, e.g. https://contoso.com")
	}
	return in, nil
}

// shapeOrganization converts an upstream organization, with its owner's
// name from the cached users.
func shapeOrganization(ctx context.Context, ref *refData, o pd.Organization) Organization {
	ref.rememberOrg(o.ID, o.Name)
	snap, _ := ref.get(ctx, false) // names are best effort
	out := Organization{ID: o.ID, Name: o.Name, Website: o.Website, OwnerID: o.OwnerID, OwnerName: snap.users[o.OwnerID],
		IsDeleted: o.IsDeleted}
	if o.Address != nil {
		out.Address = o.Address.Value
	}
	return out
}

// Persons

// GetPersonArgs are the arguments of pipedrive_get_person.
type GetPersonArgs struct {
	PersonID int64 `json:"person_id" jsonschema:"minimum=1"`
	Full     bool  `json:"full,omitempty" jsonschema_description:"Also return details."`
}

// PersonRecord is a person as pipedrive_get_person returns it: with full,
// its details too.
type PersonRecord struct {
	Person
	Details *PersonDetails `json:"details,omitempty"`
}

// PersonDetails are the members of a person that the compact result leaves
// out: the name's parts, emails and phones with their labels. Custom
// fields are keyed by field code.
type PersonDetails struct {
	FirstName    string         `json:"first_name,omitempty"`
	LastName     string         `json:"last_name,omitempty"`
	Emails       []pd.Contact   `json:"emails,omitempty"`
	Phones       []pd.Contact   `json:"phones,omitempty"`
	VisibleTo    string         `json:"visible_to,omitempty"`
	LabelIDs     []int64        `json:"label_ids,omitempty"`
	AddTime      string         `json:"add_time,omitempty"`
	UpdateTime   string         `json:"update_time,omitempty"`
	CustomFields map[string]any `json:"custom_fields,omitempty"`
}

func (s *service) getPerson(ctx context.Context, in GetPersonArgs) (PersonRecord, error) {
	c, ref := s.at(ctx)
	p, err := c.GetPerson(ctx, in.PersonID)
	if err != nil {
		return PersonRecord{}, err
	}
	out := PersonRecord{Person: shapePerson(ctx, ref, *p)}
	if in.Full {
		out.Details = &PersonDetails{
			FirstName: p.FirstName, LastName: p.LastName, Emails: p.Emails, Phones: p.Phones,
			VisibleTo: visibilityLabel(p.VisibleTo), LabelIDs: p.LabelIDs, AddTime: p.AddTime, UpdateTime: p.UpdateTime,
			CustomFields: setValues(p.CustomFields),
		}
	}
	return out, nil
}

// AddPersonArgs are the arguments of pipedrive_add_person.
type AddPersonArgs struct {
	Name    string   `json:"name" jsonschema:"minLength=1"`
	Emails  []string `json:"emails,omitempty" jsonschema:"maxItems=10"`
	Phones  []string `json:"phones,omitempty" jsonschema:"maxItems=10"`
	OrgID   int64    `json:"org_id,omitempty" jsonschema:"minimum=1"`
	OwnerID int64    `json:"owner_id,omitempty" jsonschema:"minimum=1" jsonschema_description:"Default: the token's user."`
}

// UpdatePersonArgs are the arguments of pipedrive_update_person.
type UpdatePersonArgs struct {
	PersonID int64    `json:"person_id" jsonschema:"minimum=1"`
	Name     string   `json:"name,omitempty"`
	Emails   []string `json:"emails,omitempty" jsonschema:"maxItems=10"`
	Phones   []string `json:"phones,omitempty" jsonschema:"maxItems=10"`
	OrgID    int64    `json:"org_id,omitempty" jsonschema:"minimum=1"`
	OwnerID  int64    `json:"owner_id,omitempty" jsonschema:"minimum=1"`
}

func (s *service) addPerson(ctx context.Context, in AddPersonArgs) (Person, error) {
	c, ref := s.at(ctx)
	if strings.TrimSpace(in.Name) == "" {
		return Person{}, tools.InvalidArgument("name", "name must not be blank")
	}
	body, err := personInput(in.Name, in.Emails, in.Phones, in.OrgID, in.OwnerID)
	if err != nil {
		return Person{}, err
	}
	if err := checkUser(ctx, ref, "owner_id", in.OwnerID); err != nil {
		return Person{}, err
	}
	p, err := c.AddPerson(ctx, body)
	if err != nil {
		return Person{}, err
	}
	if p.ID == 0 {
		return Person{}, noID("person")
	}
	return shapePerson(ctx, ref, *p), nil
}

func (s *service) updatePerson(ctx context.Context, in UpdatePersonArgs) (Person, error) {
	c, ref := s.at(ctx)
	if in.Name == "" && len(in.Emails) == 0 && len(in.Phones) == 0 && in.OrgID == 0 && in.OwnerID == 0 {
		return Person{}, tools.InvalidArgument("", "nothing to change: give name, emails, phones, org_id or owner_id")
	}
	if in.Name != "" && strings.TrimSpace(in.Name) == "" {
		return Person{}, tools.InvalidArgument("name", "name must not be blank")
	}
	body, err := personInput(in.Name, in.Emails, in.Phones, in.OrgID, in.OwnerID)
	if err != nil {
		return Person{}, err
	}
	if err := checkUser(ctx, ref, "owner_id", in.OwnerID); err != nil {
		return Person{}, err
	}
	p, err := c.UpdatePerson(ctx, in.PersonID, body)
	if err != nil {
		return Person{}, err
	}
	return shapePerson(ctx, ref, *p), nil
}

// personInput is the body of a person write, emails and phones checked;
// empty arguments are not sent.
func personInput(name string, emails, phones []string, orgID, ownerID int64) (pd.PersonInput, error) {
	in := pd.PersonInput{Name: opt(strings.TrimSpace(name)), OrgID: opt(orgID), OwnerID: opt(ownerID)}
	for i, e := range emails {
		e = strings.TrimSpace(e)
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e || a.Name != "" {
			return in, tools.InvalidArgument("emails", "emails[%d] %q is not an email address (name@example.com)", i, e)
		}
		in.Emails = append(in.Emails, pd.Contact{Value: e, Primary: i == 0, Label: "work"})
	}
	for i, p := range phones {
		p = strings.TrimSpace(p)
		if !strings.ContainsAny(p, "0123456789") {
			return in, tools.InvalidArgument("phones", "phones[%d] %q has no digits", i, p)
		}
		in.Phones = append(in.Phones, pd.Contact{Value: p, Primary: i == 0, Label: "work"})
	}
	return in, nil
}

// shapePerson converts an upstream person: the owner's name from the
// cached users, the organization's name cached or fetched once.
func shapePerson(ctx context.Context, ref *refData, p pd.Person) Person {
	ref.rememberPerson(p.ID, p.Name)
	snap, _ := ref.get(ctx, false) // names are best effort
	return Person{
		ID: p.ID, Name: p.Name, Emails: contactValues(p.Emails), Phones: contactValues(p.Phones), JobTitle: p.JobTitle,
		OrgID: p.OrgID, OrgName: ref.orgName(ctx, p.OrgID), OwnerID: p.OwnerID, OwnerName: snap.users[p.OwnerID],
		IsDeleted: p.IsDeleted,
	}
}

// contactValues lists the values, the primary one first.
func contactValues(cs []pd.Contact) []string {
	var out []string
	for _, c := range cs {
		if c.Primary {
			out = append([]string{c.Value}, out...)
		} else {
			out = append(out, c.Value)
		}
	}
	return out
}
