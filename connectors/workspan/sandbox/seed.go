package sandbox

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// The seeded tenant sells with partners (Microsoft first) to ~15 customer accounts; it holds
// 40 opportunities in every stage, in several currencies and countries, some already linked
// to a CRM id or to a Partner Center referral, three integrations and twelve reports.
// Everything derives from the seed and the clock at New, so two servers built with the same
// Seed and Now hold identical data.

type seedAccount struct {
	name, domain, industry, country, currency string
}

var seedAccounts = []seedAccount{
	{"Contoso", "contoso.com", "Manufacturing", "US", "USD"},
	{"Fabrikam", "fabrikam.com", "Retail", "US", "USD"},
	{"Woodgrove Bank", "woodgrovebank.com", "Financial Services", "US", "USD"},
	{"Northwind Traders", "northwindtraders.co.uk", "Distribution", "GB", "GBP"},
	{"Wide World Importers", "wideworldimporters.co.uk", "Distribution", "GB", "GBP"},
	{"Alpine Ski House", "alpineskihouse.de", "Hospitality", "DE", "EUR"},
	{"Lamna Healthcare", "lamnahealthcare.de", "Healthcare", "DE", "EUR"},
	{"Fourth Coffee", "fourthcoffee.fr", "Retail", "FR", "EUR"},
	{"Litware", "litware.in", "Professional Services", "IN", "INR"},
	{"VanArsdel", "vanarsdel.in", "Manufacturing", "IN", "INR"},
	{"Tailspin Toys", "tailspintoys.com.au", "Retail", "AU", "AUD"},
	{"Blue Yonder Airlines", "blueyonderairlines.com.au", "Transportation", "AU", "AUD"},
	{"Adventure Works", "adventure-works.ca", "Retail", "CA", "CAD"},
	{"Relecloud", "relecloud.jp", "Media", "JP", "JPY"},
	{"Humongous Insurance", "humongousinsurance.jp", "Financial Services", "JP", "JPY"},
}

var seedProjects = []string{
	"Azure migration", "Copilot rollout", "Dynamics 365 Sales", "Fabric analytics platform",
	"Defender XDR deployment", "Sentinel SOC onboarding", "Azure OpenAI pilot", "SAP on Azure",
	"Azure Virtual Desktop", "Power Platform CoE",
}

var seedPartners = []string{"Microsoft", "Microsoft", "Microsoft", "Trey Research", "Northwind Consulting", "Adatum Systems"}

// fxFromUSD scales a USD amount to each currency, roughly.
var fxFromUSD = map[string]float64{"USD": 1, "GBP": 0.8, "EUR": 0.92, "CAD": 1.36, "AUD": 1.5, "INR": 83, "JPY": 150}

type integration struct {
	ID          string
	Type        string
	Name        string
	Description string
}

var seedIntegrations = []integration{
	{"int-crm-001", "CRM", "Salesforce CRM", "Opportunities and accounts synchronised with the CRM"},
	{"int-pc-001", "PARTNER_CENTER", "Microsoft Partner Center", "Co-sell referrals exchanged with Microsoft Partner Center"},
	{"int-mkt-001", "MARKETPLACE", "Azure Marketplace", "Private offers and marketplace transactions"},
}

const seedOpportunities = 40

func (s *Server) seed(seed int64, now time.Time) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x3a5b0003))
	s.integrations = append([]integration(nil), seedIntegrations...)

	accounts := make([]*object, 0, len(seedAccounts))
	for i, a := range seedAccounts {
		created := now.Add(-time.Duration(400+rng.IntN(300)) * 24 * time.Hour)
		o := &object{
			id:          s.newObjectID(),
			kind:        kindAccount,
			name:        a.name,
			country:     a.country,
			industry:    a.industry,
			website:     "https://www." + a.domain,
			externalIDs: map[string]string{},
			createdAt:   created,
			modifiedAt:  created.Add(time.Duration(rng.IntN(200)) * 24 * time.Hour),
		}
		if i%3 != 2 {
			o.externalIDs[fieldExternalAccountID] = fmt.Sprintf("001%012d", rng.Int64N(1e12))
		}
		s.objects[o.id] = o
		if _, dup := s.accountNames[strings.ToLower(o.name)]; !dup {
			s.accountNames[strings.ToLower(o.name)] = o.id
		}
		accounts = append(accounts, o)
	}

	for i := range seedOpportunities {
		pick := rng.IntN(len(accounts))
		acct, meta := accounts[pick], seedAccounts[pick]
		stage := stages[i%len(stages)].name
		created := now.Add(-time.Duration(10+rng.IntN(330))*24*time.Hour - time.Duration(rng.IntN(86400))*time.Second)
		var closeAt time.Time
		if isClosed(stage) {
			closeAt = created.Add(time.Duration(20+rng.IntN(120)) * 24 * time.Hour)
			if closeAt.After(now) {
				closeAt = now.Add(-time.Duration(1+rng.IntN(10)) * 24 * time.Hour)
			}
		} else {
			closeAt = now.Add(time.Duration(5+rng.IntN(200)) * 24 * time.Hour)
		}
		usd := float64(10+rng.IntN(490)) * 1000
		amount := math.Round(usd*fxFromUSD[meta.currency]/100) * 100
		o := &object{
			id:          s.newObjectID(),
			kind:        kindOpportunity,
			name:        fmt.Sprintf("%s — %s", acct.name, seedProjects[rng.IntN(len(seedProjects))]),
			stage:       stage,
			currency:    meta.currency,
			closeDate:   closeAt.Format(dateLayout),
			partner:     seedPartners[rng.IntN(len(seedPartners))],
			country:     meta.country,
			accountID:   acct.id,
			custom:      map[string]string{},
			externalIDs: map[string]string{},
			createdAt:   created,
			modifiedAt:  created.Add(time.Duration(rng.IntN(240)) * time.Hour),
		}
		if i%9 != 4 { // a few opportunities have no amount yet
			o.amount = &amount
		}
		if o.modifiedAt.After(now) {
			o.modifiedAt = now
		}
		if i%2 == 0 {
			s.setExternalID(o, fieldCRMOpportunityID, fmt.Sprintf("006%012d", rng.Int64N(1e12)))
		}
		if o.partner == "Microsoft" && i%3 == 0 {
			ref := fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<16), rng.IntN(1<<16), rng.Int64N(1<<48))
			o.externalIDs[fieldReferralID] = ref
			o.integrationStatus = "LINKED"
			o.audit = append(o.audit, auditEntry{
				FieldName: fieldIntegrationStatus, StatusCode: "LINKED", Message: "Referral created in Partner Center",
				IntegrationID: "int-pc-001", ExternalID: ref, At: o.modifiedAt,
			})
		}
		s.objects[o.id] = o
	}
	s.version = 1
	s.seedReports(rng, now)
}
