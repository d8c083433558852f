package sandbox

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The seeded partner is "Trey Research", a Microsoft partner with ~60 referrals: incoming ones
// (Microsoft co-sell invitations and partner-to-partner or marketplace leads) and outgoing ones
// (its own deals, some shared with Microsoft), in every status/substatus combination, for
// customers in the US, GB, DE, FR, IN, AU, CA and JP. Everything is derived from the seed and
// the clock at New, so two servers built with the same Seed at the same clock time hold
// identical data.

type customer struct {
	name, domain, size, industry string
	addr                         address
	currency                     string
	locale                       string
}

var customers = []customer{
	{"Contoso Ltd", "contoso.com", "1001to5000employees", "Manufacturing", address{AddressLine1: "4567 Main Street", City: "Redmond", State: "WA", PostalCode: "98052", Country: "US", Region: "United States"}, "USD", "en-US"},
	{"Fabrikam Inc", "fabrikam.com", "5001to10000employees", "Retail", address{AddressLine1: "1400 Broadway", City: "New York", State: "NY", PostalCode: "10018", Country: "US", Region: "United States"}, "USD", "en-US"},
	{"Woodgrove Bank", "woodgrovebank.com", "10000plusemployees", "Financial Services", address{AddressLine1: "233 S Wacker Drive", City: "Chicago", State: "IL", PostalCode: "60606", Country: "US", Region: "United States"}, "USD", "en-US"},
	{"Margie's Travel", "margiestravel.com", "51to250employees", "Hospitality", address{AddressLine1: "1501 4th Avenue", City: "Seattle", State: "WA", PostalCode: "98101", Country: "US", Region: "United States"}, "USD", "en-US"},
	{"Northwind Traders", "northwindtraders.co.uk", "251to1000employees", "Retail", address{AddressLine1: "52 Old Street", City: "London", PostalCode: "EC1V 9HX", Country: "GB", Region: "United Kingdom"}, "GBP", "en-GB"},
	{"Wide World Importers", "wideworldimporters.co.uk", "1001to5000employees", "Distribution", address{AddressLine1: "18 Portland Street", City: "Manchester", PostalCode: "M1 3BE", Country: "GB", Region: "United Kingdom"}, "GBP", "en-GB"},
	{"Alpine Ski House", "alpineskihouse.de", "51to250employees", "Hospitality", address{AddressLine1: "Leopoldstraße 24", City: "München", State: "Bayern", PostalCode: "80802", Country: "DE", Region: "Germany"}, "EUR", "de-DE"},
	{"Lamna Healthcare Company", "lamnahealthcare.de", "5001to10000employees", "Healthcare", address{AddressLine1: "Friedrichstraße 68", City: "Berlin", PostalCode: "10117", Country: "DE", Region: "Germany"}, "EUR", "de-DE"},
	{"Fourth Coffee", "fourthcoffee.fr", "251to1000employees", "Retail", address{AddressLine1: "12 Rue de Rivoli", City: "Paris", PostalCode: "75004", Country: "FR", Region: "France"}, "EUR", "fr-FR"},
	{"Coho Winery", "cohowinery.fr", "10to50employees", "Agriculture", address{AddressLine1: "8 Quai des Chartrons", City: "Bordeaux", PostalCode: "33000", Country: "FR", Region: "France"}, "EUR", "fr-FR"},
	{"Litware", "litware.in", "1001to5000employees", "Professional Services", address{AddressLine1: "80 Feet Road, Koramangala", City: "Bengaluru", State: "Karnataka", PostalCode: "560034", Country: "IN", Region: "India"}, "INR", "en-IN"},
	{"VanArsdel Ltd", "vanarsdel.in", "10000plusemployees", "Manufacturing", address{AddressLine1: "Bandra Kurla Complex", City: "Mumbai", State: "Maharashtra", PostalCode: "400051", Country: "IN", Region: "India"}, "INR", "en-IN"},
	{"Tailspin Toys", "tailspintoys.com.au", "251to1000employees", "Retail", address{AddressLine1: "200 George Street", City: "Sydney", State: "NSW", PostalCode: "2000", Country: "AU", Region: "Australia"}, "AUD", "en-AU"},
	{"Blue Yonder Airlines", "blueyonderairlines.com.au", "5001to10000employees", "Transportation", address{AddressLine1: "525 Collins Street", City: "Melbourne", State: "VIC", PostalCode: "3000", Country: "AU", Region: "Australia"}, "AUD", "en-AU"},
	{"Adventure Works", "adventure-works.ca", "1001to5000employees", "Retail", address{AddressLine1: "100 King Street West", City: "Toronto", State: "ON", PostalCode: "M5X 1A9", Country: "CA", Region: "Canada"}, "CAD", "en-CA"},
	{"Relecloud", "relecloud.jp", "1001to5000employees", "Media and Communications", address{AddressLine1: "2-7-1 Marunouchi", City: "Tokyo", PostalCode: "100-0005", Country: "JP", Region: "Japan"}, "JPY", "ja-JP"},
	{"Humongous Insurance", "humongousinsurance.jp", "10000plusemployees", "Financial Services", address{AddressLine1: "3-6-28 Umeda", City: "Osaka", PostalCode: "530-0001", Country: "JP", Region: "Japan"}, "JPY", "ja-JP"},
	{"A. Datum Corporation", "adatum.ca", "51to250employees", "Professional Services", address{AddressLine1: "1000 Rue De La Gauchetière", City: "Montréal", State: "QC", PostalCode: "H3B 4W5", Country: "CA", Region: "Canada"}, "CAD", "fr-CA"},
}

// fxFromUSD scales a USD amount to each currency, roughly.
var fxFromUSD = map[string]float64{"USD": 1, "GBP": 0.8, "EUR": 0.92, "CAD": 1.36, "AUD": 1.5, "INR": 83, "JPY": 150}

var contactFirst = []string{"Olivia", "Liam", "Aisha", "Kenji", "Ingrid", "Tomás", "Chloé", "Lars", "Mei", "Diego", "Priya", "Hannah", "Yuki", "Arjun", "Sophie", "Mateo"}
var contactLast = []string{"Anderson", "Bauer", "Dubois", "Fischer", "Hughes", "Iyer", "Nakamura", "O'Brien", "Patel", "Rossi", "Schmidt", "Tanaka", "Walsh", "Martin", "Silva", "Kowalski"}

var partnerSellers = []member{
	{FirstName: "Alex", LastName: "Morgan", Email: "alex.morgan@treyresearch.net", PhoneNumber: "+1 425 555 0110"},
	{FirstName: "Priya", LastName: "Natarajan", Email: "priya.natarajan@treyresearch.net", PhoneNumber: "+1 212 555 0111"},
	{FirstName: "Daniel", LastName: "Okafor", Email: "daniel.okafor@treyresearch.net", PhoneNumber: "+44 20 7946 0112"},
	{FirstName: "Sofia", LastName: "Lindqvist", Email: "sofia.lindqvist@treyresearch.net", PhoneNumber: "+46 8 555 0113"},
	{FirstName: "Hannah", LastName: "Weber", Email: "hannah.weber@treyresearch.net", PhoneNumber: "+49 30 555 0114"},
}

type solution struct{ id, name string }

var partnerSolutions = []solution{
	{"SOL-7B2E41C9", "Trey Research Cloud Migration Factory"},
	{"SOL-3F9A06D2", "Trey Research Copilot Readiness Accelerator"},
	{"SOL-C41D88E0", "Trey Research Secure Landing Zone"},
	{"SOL-9E05B7A3", "Trey Research Data Estate Modernization"},
}

var projects = []struct{ title, product, service string }{
	{"Azure migration", "Azure", "Cloud migration"},
	{"Copilot for Microsoft 365 rollout", "Microsoft 365", "Implementation"},
	{"Dynamics 365 Sales implementation", "Dynamics 365", "Implementation"},
	{"Fabric analytics platform", "Microsoft Fabric", "Consulting"},
	{"Defender XDR deployment", "Microsoft Defender", "Managed services"},
	{"Sentinel SOC onboarding", "Microsoft Sentinel", "Managed services"},
	{"Azure OpenAI proof of concept", "Azure OpenAI", "Consulting"},
	{"SAP on Azure", "Azure", "Cloud migration"},
	{"Azure Virtual Desktop", "Azure", "Implementation"},
	{"Power Platform CoE", "Power Platform", "Training"},
}

var referralPrograms = []string{"Azure IP Co-sell", "Solutions Partner Co-sell", "Business Applications Co-sell", "Marketplace Rewards"}

var otherPartners = []invitedBy{
	{OrganizationID: "5a1c7e43-2f0b-4d6e-9a8c-1b3d5f7e9a20", OrganizationName: "Proseware Consulting"},
	{OrganizationID: "c9e2a4b6-8d0f-4a1c-b3e5-7f9a1c3e5b71", OrganizationName: "Consolidated Messenger Partners"},
}

// microsoftOrg is the organization that sends Microsoft co-sell referrals.
var microsoftOrg = invitedBy{OrganizationID: "72f988bf-86f1-41af-91ab-2d7cd011db47", OrganizationName: "Microsoft"}

var inviteNotes = []string{
	"Customer asked their Microsoft account team for a partner with migration experience.",
	"Microsoft seller looking for a partner to run a proof of concept.",
	"Customer needs licensing guidance and a quote for the next renewal.",
	"Joint pursuit; Microsoft technical specialist already engaged.",
	"Customer wants a reference architecture workshop before committing.",
}

var lostReasons = []string{"Lost to a competitor", "Budget cut", "No decision", "Project postponed to next fiscal year"}
var declineReasons = []string{"Outside our practice areas", "No delivery capacity this quarter", "Duplicate of an existing engagement"}

type seedSpec struct {
	incoming  bool
	shared    bool
	status    string
	substatus string
	cust      int     // index into customers; -1 picks one
	minAgo    float64 // created between minAgo and maxAgo days before now
	maxAgo    float64
	qual      string
}

var statusCombos = [][2]string{
	{"New", "Pending"}, {"New", "Received"}, {"Active", "Accepted"},
	{"Closed", "Won"}, {"Closed", "Lost"}, {"Closed", "Declined"}, {"Closed", "Expired"},
}

func (s *Server) seed(seed int64, now time.Time) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)*0x9e3779b97f4a7c15+7))
	s.partner = organization{ID: newGUID(rng), Name: "Trey Research", MpnID: fmt.Sprint(4800000 + rng.IntN(99999))}

	var specs []seedSpec
	// Recent arrivals (last 7 days), so "what came in this week" has answers.
	specs = append(specs,
		seedSpec{incoming: true, shared: true, status: "New", substatus: "Pending", cust: 0, minAgo: 0.2, maxAgo: 1, qual: "SalesQualified"},
		seedSpec{incoming: true, shared: true, status: "New", substatus: "Pending", cust: 4, minAgo: 1, maxAgo: 2, qual: "SalesQualified"},
		seedSpec{incoming: true, shared: true, status: "New", substatus: "Received", cust: 2, minAgo: 2, maxAgo: 3, qual: "SalesQualified"},
		seedSpec{incoming: true, shared: true, status: "New", substatus: "Pending", cust: 5, minAgo: 4, maxAgo: 5, qual: "MarketingQualified"},
		seedSpec{incoming: false, shared: false, status: "New", substatus: "Pending", cust: 6, minAgo: 3, maxAgo: 4, qual: "Direct"},
		seedSpec{incoming: true, shared: false, status: "New", substatus: "Pending", cust: 12, minAgo: 5, maxAgo: 6.5, qual: "MarketingQualified"},
		seedSpec{incoming: true, shared: true, status: "Active", substatus: "Accepted", cust: 8, minAgo: 5, maxAgo: 6.5, qual: "SalesQualified"},
	)
	// Every status/substatus combination for each direction and type.
	for i := range 28 {
		c := statusCombos[i%7]
		specs = append(specs, seedSpec{incoming: (i/7)%2 == 0, shared: i/14 == 0, status: c[0], substatus: c[1], cust: -1})
	}
	// The rest, weighted towards open referrals.
	weighted := []int{0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 6}
	for len(specs) < 57 {
		c := statusCombos[weighted[rng.IntN(len(weighted))]]
		specs = append(specs, seedSpec{incoming: rng.IntN(100) < 55, shared: rng.IntN(100) < 70, status: c[0], substatus: c[1], cust: -1})
	}
	for i := range specs {
		sp := &specs[i]
		if sp.cust < 0 {
			sp.cust = rng.IntN(len(customers))
		}
		if sp.maxAgo == 0 {
			switch sp.status {
			case "New":
				sp.minAgo, sp.maxAgo = 8, 40
			case "Active":
				sp.minAgo, sp.maxAgo = 10, 100
			default:
				sp.minAgo, sp.maxAgo = 20, 120
			}
		}
	}

	var created []*referral
	for _, sp := range specs {
		created = append(created, s.seedReferral(rng, sp, now))
	}
	// Three outgoing shared engagements get their Microsoft-facing companion referral (same
	// engagementId, target BusinessProfileLocation/msft), as the create-a-shared-referral flow does.
	n := 0
	for _, r := range created {
		if n == 3 {
			break
		}
		if r.Direction == "Outgoing" && r.Type == "Shared" && r.Status != "New" {
			c := r.clone()
			c.ID = newGUID(rng)
			c.Name = r.Name + " (Microsoft)"
			c.Target = []target{{ID: "msft", Type: "BusinessProfileLocation"}}
			c.Registrations, c.RegistrationStatus = nil, ""
			c.ETag = s.etag(now)
			created = append(created, c)
			n++
		}
	}
	for _, r := range created {
		s.store(r)
	}
}

func (s *Server) seedReferral(rng *rand.Rand, sp seedSpec, now time.Time) *referral {
	day := 24 * time.Hour
	cust := customers[sp.cust]
	agoDays := sp.minAgo + rng.Float64()*(sp.maxAgo-sp.minAgo)
	created := now.Add(-time.Duration(agoDays * float64(day))).Truncate(time.Second)
	between := func(a, b time.Time) time.Time {
		if !b.After(a) {
			return a
		}
		return a.Add(time.Duration(rng.Int64N(int64(b.Sub(a))))).Truncate(time.Second)
	}
	pick := func(n int) int { return rng.IntN(n) }
	yes := func(pct int) bool { return rng.IntN(100) < pct }
	ptrB := func(b bool) *bool { return &b }

	proj := projects[pick(len(projects))]
	sol := partnerSolutions[pick(len(partnerSolutions))]
	r := &referral{
		ID:               newGUID(rng),
		EngagementID:     newGUID(rng),
		Name:             cust.name + " - " + proj.title,
		OrganizationID:   s.partner.ID,
		OrganizationName: s.partner.Name,
		MpnID:            s.partner.MpnID,
		Status:           sp.status,
		Substatus:        sp.substatus,
		Type:             "Independent",
		Direction:        "Outgoing",
		CreatedDateTime:  fmtTime(created),
		ReferralProgram:  referralPrograms[pick(len(referralPrograms))],
	}
	if sp.shared {
		r.Type = "Shared"
	}
	if sp.incoming {
		r.Direction = "Incoming"
	}

	// Qualification
	switch {
	case sp.qual != "":
		r.Qualification = sp.qual
	case sp.incoming && sp.shared:
		r.Qualification = []string{"SalesQualified", "SalesQualified", "MarketingQualified"}[pick(3)]
	case sp.incoming:
		r.Qualification = []string{"MarketingQualified", "Direct"}[pick(2)]
	default:
		r.Qualification = []string{"Direct", "SalesQualified"}[pick(2)]
	}

	// Lifecycle dates
	accepted, closed := time.Time{}, time.Time{}
	wasActive := sp.status == "Active" || sp.substatus == "Won" || sp.substatus == "Lost"
	if wasActive {
		if sp.incoming {
			accepted = between(created.Add(2*time.Hour), minTime(created.Add(5*day), now.Add(-time.Hour)))
		} else {
			accepted = created
		}
		r.AcceptedDateTime = fmtTime(accepted)
	}
	if sp.status == "Closed" {
		from := created.Add(3 * day)
		if !accepted.IsZero() {
			from = accepted.Add(5 * day)
		}
		closed = between(from, now.Add(-day))
		if sp.substatus == "Expired" {
			closed = created.Add(30 * day)
			if closed.After(now) {
				closed = now.Add(-time.Hour)
			}
		}
		r.ClosedDateTime = fmtTime(closed)
	}
	if sp.incoming && sp.status == "New" {
		r.ExpirationDateTime = fmtTime(created.Add(30 * day))
		if !created.Add(30 * day).After(now) {
			r.ExpirationDateTime = fmtTime(now.Add(time.Duration(3+pick(10)) * day).Truncate(time.Hour))
		}
	}
	if sp.substatus == "Expired" {
		r.ExpirationDateTime = fmtTime(closed)
	}

	// Sales stage and status reason
	switch sp.substatus {
	case "Pending", "Received":
		if yes(40) {
			r.SalesStage = "Qualify"
		}
	case "Accepted":
		r.SalesStage = salesStages[pick(4)]
	case "Won":
		r.SalesStage = "Close"
		r.StatusReason = "Contract signed"
	case "Lost":
		r.SalesStage = []string{"Develop", "Propose"}[pick(2)]
		r.StatusReason = lostReasons[pick(len(lostReasons))]
	case "Declined":
		r.StatusReason = declineReasons[pick(len(declineReasons))]
	case "Expired":
		r.StatusReason = "The referral expired before it was accepted"
	}

	// Customer
	contacts := 1 + pick(2)
	var custTeam []member
	for range contacts {
		fn, ln := contactFirst[pick(len(contactFirst))], contactLast[pick(len(contactLast))]
		custTeam = append(custTeam, member{
			FirstName: fn, LastName: ln,
			Email:             strings.ToLower(strings.NewReplacer("'", "", "á", "a", "é", "e").Replace(fn+"."+ln)) + "@" + cust.domain,
			PhoneNumber:       fmt.Sprintf("+%d 555 01%02d", countryCallingCode(cust.addr.Country), 10+pick(90)),
			ContactPreference: &contactPreference{Locale: cust.locale, DisableNotifications: ptrB(false)},
		})
	}
	addr := cust.addr
	r.CustomerProfile = &customerProfile{Name: cust.name, Size: cust.size, Address: &addr, Team: custTeam}

	// Consent
	r.Consent = &consent{
		ConsentToContact:                          ptrB(true),
		ConsentToToShareInfoWithOthers:            ptrB(sp.shared || yes(30)),
		ConsentToShareReferralWithMicrosoftSeller: ptrB(sp.shared || yes(20)),
	}

	// Details
	usd := float64(25000 + 500*pick(1450))
	value := roundTo(usd*fxFromUSD[cust.currency], cust.currency)
	var closing time.Time
	switch sp.status {
	case "Closed":
		closing = closed.Truncate(day)
	default:
		closing = now.Add(time.Duration(14+pick(150)) * day).Truncate(day)
	}
	r.Details = &details{
		Notes:           notesFor(sp, proj.title, cust.name),
		DealValue:       &value,
		Currency:        cust.currency,
		ClosingDateTime: fmtTime(closing),
		Requirements: &requirements{
			Industries: []idItem{{ID: cust.industry}},
			Products:   []idItem{{ID: proj.product}},
			Services:   []idItem{{ID: proj.service}},
			Solutions:  []any{map[string]any{"id": sol.id, "name": sol.name, "publisherName": s.partner.Name}},
		},
	}
	if sp.incoming {
		r.Details.CustomerRequestedContact = ptrB(yes(60))
	}

	// Partner team
	first := pick(len(partnerSellers))
	team := []member{partnerSellers[first]}
	if yes(35) {
		team = append(team, partnerSellers[(first+1+pick(len(partnerSellers)-1))%len(partnerSellers)])
	}
	for i := range team {
		team[i].ContactPreference = &contactPreference{Locale: "en-US", DisableNotifications: ptrB(false)}
	}
	r.Team = team

	// Invitation, target, tracking
	if sp.incoming {
		ic := &inviteContext{Notes: inviteNotes[pick(len(inviteNotes))]}
		if sp.shared {
			inv := microsoftOrg
			ic.InvitedBy = &inv
			ic.AssistanceRequestCode = assistCodes[1+pick(len(assistCodes)-1)]
		} else {
			inv := otherPartners[pick(len(otherPartners))]
			ic.InvitedBy = &inv
			ic.AssistanceRequestCode = "GeneralOrOther"
		}
		r.InviteContext = ic
	}
	r.Target = []target{{ID: sol.id, Type: "SolutionProfile"}}
	if sp.shared && sp.status != "New" {
		r.TrackingInfo = &trackingInfo{MicrosoftMsxID: fmt.Sprintf("7-%s", strings.ToUpper(randomAlnum(rng, 10)))}
	}
	if !sp.incoming || wasActive {
		if yes(70) {
			r.ExternalReferenceID = fmt.Sprintf("OPP-%05d", 10000+pick(90000))
		}
	}
	if yes(25) {
		r.CampaignID = []string{"FY27-AZ-MIGRATE", "FY27-COPILOT-Q1", "FY27-SECURITY-PUSH"}[pick(3)]
	}
	if yes(20) {
		r.Favorite = ptrB(true)
	}
	if yes(20) {
		r.Tags = []tag{{Tag: []string{"Priority", "Strategic", "Renewal"}[pick(3)]}}
	}

	// Deal registrations on accepted shared deals.
	var regLatest time.Time
	if sp.shared && now.Sub(accepted) > 4*day && (sp.substatus == "Won" || sp.substatus == "Accepted" && yes(50)) {
		regAt := between(accepted.Add(day), minTime(maxTime(accepted.Add(2*day), closed), now))
		status := "Approved"
		regLatest = regAt
		stamp := func(t time.Time) string {
			t = minTime(t, now)
			regLatest = maxTime(regLatest, t)
			return fmtTime(t)
		}
		hist := &statusHistory{ReviewPendingDateTime: stamp(regAt)}
		if sp.substatus == "Accepted" {
			status = []string{"ReviewPending", "ActionRequired", "Approved"}[pick(3)]
		}
		switch status {
		case "ActionRequired":
			hist.ActionRequiredDateTime = stamp(regAt.Add(2 * day))
		case "Approved":
			hist.PassedDateTime = stamp(regAt.Add(day))
			hist.ApprovedDateTime = stamp(regAt.Add(3 * day))
		}
		start := closing
		if sp.substatus == "Won" {
			start = closed.Truncate(day)
		}
		cValue := roundTo(value*(0.8+0.4*rng.Float64()), cust.currency)
		sValue := cValue
		term := contractTerms[pick(2)]
		ct := &contract{Value: &cValue, Currency: cust.currency, StartDateTime: fmtTime(start), Term: term}
		if term == "Finite" {
			ct.EndDateTime = fmtTime(start.AddDate(1+pick(3), 0, 0))
		}
		if sp.substatus == "Won" {
			ct.SignDateTime = fmtTime(closed.Add(-2 * day).Truncate(day))
		}
		transacted := yes(50)
		mtd := &marketplaceTxnDetails{IsMarketplaceTransacted: ptrB(transacted)}
		if transacted {
			mtd.MarketplaceTransactionDateTime = fmtTime(start)
		}
		r.Registrations = []registration{{
			ID:                   newGUID(rng),
			RegistrationDateTime: fmtTime(regAt),
			Status:               status,
			Contract:             ct,
			SolutionDetails: []solutionDetail{{
				ID: sol.id, Name: sol.name, Value: &sValue, Currency: cust.currency,
				IsDeployedOnAzure: ptrB(true), PrimaryDeploymentOn: deploymentSites[pick(2)], PricingModel: pricingModels[pick(2)],
				MarketplaceTransactionDetails: mtd,
			}},
			StatusHistory: hist,
		}}
		r.RegistrationStatus = status
	}

	last := maxTime(created, accepted, closed, regLatest)
	updated := between(last, minTime(last.Add(10*day), now))
	r.UpdatedDateTime = fmtTime(updated)
	r.ETag = s.etag(updated)
	return r
}

func notesFor(sp seedSpec, project, cust string) string {
	switch {
	case sp.incoming && sp.shared:
		return fmt.Sprintf("Microsoft co-sell referral for %s: %s.", cust, project)
	case sp.incoming:
		return fmt.Sprintf("Inbound lead: %s.", project)
	case sp.shared:
		return fmt.Sprintf("%s for %s; Microsoft invited to co-sell.", project, cust)
	}
	return fmt.Sprintf("%s for %s.", project, cust)
}

func roundTo(v float64, currency string) float64 {
	step := 100.0
	if currency == "JPY" || currency == "INR" {
		step = 10000
	}
	return math.Round(v/step) * step
}

func countryCallingCode(country string) int {
	return map[string]int{"US": 1, "CA": 1, "GB": 44, "DE": 49, "FR": 33, "IN": 91, "AU": 61, "JP": 81}[country]
}

func randomAlnum(rng *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}
