package sandbox

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// The seeded company is a Microsoft partner ("Trey Research") selling to ~60 customers.
// Everything below is derived from the seed and the clock at New, so two servers built with
// the same Seed at the same clock time hold identical data.

var orgNames = []string{
	"Contoso Ltd", "Fabrikam Inc", "Northwind Traders", "Adventure Works", "Tailspin Toys",
	"Litware", "Woodgrove Bank", "Wingtip Toys", "Alpine Ski House", "Blue Yonder Airlines",
	"City Power & Light", "Coho Winery", "Consolidated Messenger", "Fourth Coffee", "Graphic Design Institute",
	"Humongous Insurance", "Lamna Healthcare Company", "Lucerne Publishing", "Margie's Travel", "Nod Publishers",
	"Proseware", "Southridge Video", "Wide World Importers", "Relecloud", "VanArsdel Ltd",
	"Bellows College", "Best For You Organics Company", "A. Datum Corporation", "First Up Consultants", "Munson's Pickles and Preserves Farm",
	"Northwind Health", "Olympia Sports Group", "School of Fine Art", "Tailwind Traders", "Baldwin Museum of Science",
	"Fincher Architects", "Liberty's Delightful Sinful Bakery & Cafe", "The Phone Company", "Lakeshore Retail", "Cronus International",
	"Blue Sky Logistics", "Ironclad Manufacturing", "Pinecrest Medical Group", "Harborview Capital", "Summit Ridge Energy",
	"Redwood Analytics", "Cobalt Systems", "Meridian Freight", "Silverline Hospitality", "Granite State Utilities",
	"Evergreen Pharma", "Crescent Insurance Group", "Brightwater Foods", "Oakridge University", "Starlight Media",
	"Quantum Dynamics", "Keystone Logistics", "Bayside Clinics", "Falcon Aerospace", "Horizon Telecom",
}

type city struct {
	locality, area, country, countryCode, postal string
	street                                       []string
}

var cities = []city{
	{"Seattle", "WA", "United States", "US", "98101", []string{"Pike Street", "Union Street", "4th Avenue"}},
	{"Redmond", "WA", "United States", "US", "98052", []string{"NE 36th Street", "Bel-Red Road"}},
	{"New York", "NY", "United States", "US", "10001", []string{"Madison Avenue", "Broadway", "W 34th Street"}},
	{"Chicago", "IL", "United States", "US", "60601", []string{"N Michigan Avenue", "W Wacker Drive"}},
	{"Austin", "TX", "United States", "US", "78701", []string{"Congress Avenue", "E 6th Street"}},
	{"Boston", "MA", "United States", "US", "02110", []string{"Atlantic Avenue", "State Street"}},
	{"Toronto", "ON", "Canada", "CA", "M5H 2N2", []string{"Bay Street", "King Street West"}},
	{"London", "England", "United Kingdom", "GB", "EC2A 4BX", []string{"Old Street", "Bishopsgate"}},
	{"Manchester", "England", "United Kingdom", "GB", "M1 1AD", []string{"Portland Street", "Deansgate"}},
	{"Berlin", "Berlin", "Germany", "DE", "10117", []string{"Friedrichstraße", "Unter den Linden"}},
	{"Munich", "Bavaria", "Germany", "DE", "80331", []string{"Marienplatz", "Leopoldstraße"}},
	{"Amsterdam", "North Holland", "Netherlands", "NL", "1017 CE", []string{"Herengracht", "Keizersgracht"}},
	{"Paris", "Île-de-France", "France", "FR", "75008", []string{"Rue de Rivoli", "Avenue de l'Opéra"}},
	{"Dublin", "Leinster", "Ireland", "IE", "D02 X285", []string{"Grafton Street", "Baggot Street"}},
	{"Stockholm", "Stockholm County", "Sweden", "SE", "111 43", []string{"Drottninggatan", "Kungsgatan"}},
	{"Sydney", "NSW", "Australia", "AU", "2000", []string{"George Street", "Pitt Street"}},
}

var firstNames = []string{
	"Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Mia", "Lucas", "Isabella", "Mateo",
	"Sophia", "James", "Amelia", "Benjamin", "Charlotte", "Elijah", "Harper", "Henry", "Evelyn", "Samuel",
	"Aisha", "Kenji", "Fatima", "Ravi", "Ingrid", "Tomás", "Chloé", "Lars", "Mei", "Diego",
}

var lastNames = []string{
	"Anderson", "Bauer", "Carter", "Dubois", "Eriksson", "Fischer", "Garcia", "Hughes", "Iyer", "Jensen",
	"Kowalski", "Larsen", "Martin", "Nakamura", "O'Brien", "Patel", "Quinn", "Rossi", "Schmidt", "Thompson",
	"Umar", "Varga", "Walsh", "Xu", "Yamamoto", "Zimmermann", "Costa", "Novak", "Haddad", "Silva",
}

var jobTitles = []string{
	"Chief Information Officer", "IT Director", "Head of Infrastructure", "Cloud Architect", "CTO",
	"VP of Engineering", "Procurement Manager", "Head of Data & Analytics", "CISO", "IT Operations Manager",
	"Digital Transformation Lead", "Finance Director",
}

var projects = []string{
	"Azure migration", "Microsoft 365 E5 rollout", "Dynamics 365 Sales implementation", "Copilot for Microsoft 365 pilot",
	"Fabric analytics platform", "Defender XDR deployment", "Power Platform CoE", "Azure Virtual Desktop",
	"SQL Server modernization", "Teams Phone rollout", "Sentinel SOC onboarding", "Azure OpenAI proof of concept",
	"Intune device management", "Data center exit", "SAP on Azure", "Entra ID consolidation",
}

var lostReasons = []string{
	"Went with another partner", "Budget cut", "No decision", "Price too high",
	"Project postponed to next fiscal year", "Lost to competitor",
}

var dealNotes = []string{
	"Co-sell referral from Microsoft via Partner Center.",
	"Customer asked for a Copilot readiness workshop first.",
	"Needs MACC alignment before signature.",
	"Microsoft account team engaged; joint pitch planned.",
	"Funding approved through Azure Migrate and Modernize.",
	"Security review pending with the customer's CISO.",
	"Procurement wants a three-year price lock.",
}

var activityNotes = []string{
	"Shared the reference architecture and pricing estimate.",
	"Customer wants Microsoft PDM on the next call.",
	"Agreed next steps and owners.",
	"Waiting on budget confirmation.",
	"Sent recap email with action items.",
}

func (s *Server) seed(seed int64, now time.Time) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)*0x9e3779b97f4a7c15+1))
	day := 24 * time.Hour
	ago := func(minDays, maxDays int) time.Time {
		d := time.Duration(minDays)*day + time.Duration(rng.Int64N(int64(maxDays-minDays)*int64(day)))
		return now.Add(-d).Truncate(time.Second)
	}
	between := func(a, b time.Time) time.Time {
		if !b.After(a) {
			return a
		}
		return a.Add(time.Duration(rng.Int64N(int64(b.Sub(a))))).Truncate(time.Second)
	}

	s.dealFields = dealFieldDefs()
	s.fieldsByCode = map[string]*dealField{}
	for _, f := range s.dealFields {
		s.fieldsByCode[f.Code] = f
	}

	s.company = company{ID: 7815302, Name: "Trey Research", Domain: "treyresearch", Country: "US", Industry: "IT Services"}

	userSeeds := []struct{ name, tz, off string }{
		{"Alex Morgan", "America/Los_Angeles", "-08:00"},
		{"Priya Natarajan", "America/New_York", "-05:00"},
		{"Daniel Okafor", "Europe/London", "+00:00"},
		{"Sofia Lindqvist", "Europe/Stockholm", "+01:00"},
		{"Marcus Chen", "America/Chicago", "-06:00"},
		{"Hannah Weber", "Europe/Berlin", "+01:00"},
	}
	for i, us := range userSeeds {
		created := ago(760, 900)
		s.users = append(s.users, &user{
			ID: i + 1, Name: us.name, Email: strings.ToLower(strings.ReplaceAll(us.name, " ", ".")) + "@treyresearch.net",
			Phone: fmt.Sprintf("+1 425 555 01%02d", 10+i), Admin: i == 0, Currency: "USD", Timezone: us.tz, TZOffset: us.off,
			Created: created, Modified: between(created, now), LastLogin: ago(0, 3),
		})
	}
	s.meID = 1

	for i, t := range []struct{ name, key, color string }{
		{"Call", "call", "FFFFFF"}, {"Meeting", "meeting", "FFFFFF"}, {"Task", "task", "FFFFFF"},
		{"Deadline", "deadline", "FFFFFF"}, {"Email", "email", "FFFFFF"}, {"Lunch", "lunch", "FFFFFF"},
	} {
		s.activityTypes = append(s.activityTypes, &activityType{ID: i + 1, OrderNr: i + 1, Name: t.name, Key: t.key, Color: t.color, Added: now.AddDate(-3, 0, 0)})
	}

	pipeAdded := now.AddDate(-2, 0, -14)
	s.pipelines = []*pipeline{
		{ID: 1, Name: "Sales", OrderNr: 1, Probability: true, AddTime: pipeAdded, UpdateTime: pipeAdded.AddDate(0, 2, 0)},
		{ID: 2, Name: "Partner Co-sell", OrderNr: 2, Probability: true, AddTime: pipeAdded.AddDate(0, 1, 0), UpdateTime: pipeAdded.AddDate(0, 3, 0)},
	}
	stageSeeds := []struct {
		pipe int
		name string
		prob int
		rot  int
	}{
		{1, "Lead In", 10, 0}, {1, "Qualified", 20, 0}, {1, "Contact Made", 30, 14}, {1, "Demo Scheduled", 50, 14},
		{1, "Proposal Made", 70, 21}, {1, "Negotiations Started", 90, 30},
		{2, "Referral Received", 10, 7}, {2, "Partner Accepted", 25, 0}, {2, "Joint Discovery", 40, 21},
		{2, "Co-sell Proposal", 65, 21}, {2, "Committed", 85, 30},
	}
	order := map[int]int{}
	for i, ss := range stageSeeds {
		order[ss.pipe]++
		st := &stage{ID: i + 1, OrderNr: order[ss.pipe], Name: ss.name, Probability: ss.prob, PipelineID: ss.pipe,
			AddTime: s.pipelines[ss.pipe-1].AddTime, UpdateTime: s.pipelines[ss.pipe-1].UpdateTime}
		if ss.rot > 0 {
			st.RotDays = ptr(ss.rot)
		}
		s.stages = append(s.stages, st)
	}

	// Organizations, oldest first so ids grow with add_time.
	orgs := make([]*organization, len(orgNames))
	for i, name := range orgNames {
		c := cities[rng.IntN(len(cities))]
		num := fmt.Sprint(1 + rng.IntN(400))
		street := c.street[rng.IntN(len(c.street))]
		added := ago(560, 730)
		slug := orgSlug(name)
		owner := 1 + rng.IntN(len(s.users))
		o := &organization{
			Name: name,
			Address: &address{
				Value:   fmt.Sprintf("%s %s, %s %s, %s", num, street, c.postal, c.locality, c.country),
				Country: c.country, AdminArea1: c.area, Locality: c.locality, Route: street, StreetNumber: num, PostalCode: c.postal,
			},
			Website:       ptr("https://www." + slug + ".com"),
			Linkedin:      ptr("https://www.linkedin.com/company/" + slug),
			EmployeeCount: ptr([]int{50, 120, 250, 800, 1500, 4200, 12000}[rng.IntN(7)]),
			party:         party{OwnerID: owner, VisibleTo: 3, AddTime: added, UpdateTime: between(added, now)},
		}
		if rng.IntN(3) > 0 {
			o.AnnualRevenue = ptr(*o.EmployeeCount * (80000 + rng.IntN(120000)))
		}
		orgs[i] = o
	}
	sort.SliceStable(orgs, func(i, j int) bool { return orgs[i].AddTime.Before(orgs[j].AddTime) })
	s.orgs = map[int]*organization{}
	for i, o := range orgs {
		o.ID = i + 1
		s.orgs[o.ID] = o
	}

	// Persons: one per organization, then more spread over them.
	var persons []*person
	emails := map[string]bool{}
	for i := 0; i < 100; i++ {
		o := orgs[i%len(orgs)]
		if i >= len(orgs) {
			o = orgs[rng.IntN(len(orgs))]
		}
		first, last := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		local := strings.ToLower(strings.ReplaceAll(first+"."+last, "'", ""))
		email := local + "@" + orgSlug(o.Name) + ".com"
		for n := 2; emails[email]; n++ {
			email = fmt.Sprintf("%s%d@%s.com", local, n, orgSlug(o.Name))
		}
		emails[email] = true
		added := between(o.AddTime, o.AddTime.Add(20*day))
		persons = append(persons, &person{
			FirstName: first, LastName: last, OrgID: ptr(o.ID),
			Emails:   []contactJSON{{email, true, "work"}},
			Phones:   []contactJSON{{fmt.Sprintf("+1 206 555 %04d", 1000+rng.IntN(9000)), true, "work"}},
			JobTitle: jobTitles[rng.IntN(len(jobTitles))],
			party:    party{OwnerID: o.OwnerID, VisibleTo: 3, AddTime: added, UpdateTime: between(added, now)},
		})
	}
	sort.SliceStable(persons, func(i, j int) bool { return persons[i].AddTime.Before(persons[j].AddTime) })
	s.persons = map[int]*person{}
	orgPersons := map[int][]*person{}
	for i, p := range persons {
		p.ID = i + 1
		s.persons[p.ID] = p
		orgPersons[*p.OrgID] = append(orgPersons[*p.OrgID], p)
	}

	// Deals across both pipelines, every organization has at least one.
	var deals []*deal
	titles := map[string]bool{}
	for i := 0; i < 200; i++ {
		o := orgs[i%len(orgs)]
		if i >= len(orgs) {
			o = orgs[rng.IntN(len(orgs))]
		}
		title := ""
		for try := 0; ; try++ {
			title = o.Name + " — " + projects[rng.IntN(len(projects))]
			if try > 40 {
				title += fmt.Sprintf(" (phase %d)", 2+i/len(orgs))
			}
			if !titles[title] {
				break
			}
		}
		titles[title] = true
		pipeID := 1
		if rng.IntN(100) < 35 {
			pipeID = 2
		}
		stages := s.pipelineStages(pipeID)
		status := "open"
		switch r := rng.IntN(100); {
		case r < 25:
			status = "won"
		case r < 45:
			status = "lost"
		}
		st := stages[rng.IntN(len(stages))]
		if status == "won" && rng.IntN(10) < 7 {
			st = stages[len(stages)-1]
		}
		added := ago(1, 540)
		if status != "open" && now.Sub(added) < 10*day {
			status = "open"
		}
		owner := o.OwnerID
		if rng.IntN(10) < 4 {
			owner = 1 + rng.IntN(len(s.users))
		}
		d := &deal{
			Title: title, CreatorUserID: owner, OwnerID: owner, OrgID: ptr(o.ID), PipelineID: pipeID, StageID: st.ID,
			Value:    float64(5+rng.IntN(400)) * 1000,
			Currency: []string{"USD", "USD", "USD", "USD", "USD", "USD", "EUR", "EUR", "GBP", "USD"}[rng.IntN(10)],
			AddTime:  added, Status: status, VisibleTo: 3, Origin: "ManuallyCreated",
			ExpectedCloseDate: ptr(added.AddDate(0, 0, 30+rng.IntN(170)).Format(dateLayout)),
		}
		if rng.IntN(4) == 0 {
			d.CreatorUserID = s.meID
		}
		if rng.IntN(10) == 0 {
			d.VisibleTo = 1
		}
		if ps := orgPersons[o.ID]; len(ps) > 0 && rng.IntN(10) > 0 {
			d.PersonID = ptr(ps[rng.IntN(len(ps))].ID)
		}
		if status == "open" {
			d.UpdateTime = between(added, now)
		} else {
			closed := between(added.Add(7*day), now)
			if closed.After(now) {
				closed = now
			}
			d.CloseTime = ptr(closed)
			if status == "won" {
				d.WonTime = ptr(closed)
			} else {
				d.LostTime = ptr(closed)
				d.LostReason = ptr(lostReasons[rng.IntN(len(lostReasons))])
			}
			d.UpdateTime = between(closed, closed.Add(2*day))
			if d.UpdateTime.After(now) {
				d.UpdateTime = closed
			}
		}
		if st.OrderNr > 1 {
			d.StageChangeTime = ptr(between(added, d.UpdateTime))
		}
		if rng.IntN(10) < 4 {
			d.Notes = []string{dealNotes[rng.IntN(len(dealNotes))]}
		}
		deals = append(deals, d)
	}
	sort.SliceStable(deals, func(i, j int) bool { return deals[i].AddTime.Before(deals[j].AddTime) })
	s.deals = map[int]*deal{}
	for i, d := range deals {
		d.ID = i + 1
		s.deals[d.ID] = d
	}
	s.nextDealID = len(deals) + 1

	// Activities linked to deals (and through them to persons and organizations) or to persons.
	subjects := map[string][]string{
		"call":     {"Discovery call with %s", "Follow-up call with %s", "Pricing call with %s"},
		"meeting":  {"Solution demo for %s", "Architecture workshop with %s", "Executive briefing with %s"},
		"email":    {"Send proposal to %s", "Send recap to %s", "Share case studies with %s"},
		"task":     {"Prepare SOW for %s", "Register deal in Partner Center for %s", "Update forecast for %s"},
		"deadline": {"Proposal due — %s", "Contract signature — %s"},
	}
	typeFor := func() string {
		switch r := rng.IntN(100); {
		case r < 30:
			return "call"
		case r < 55:
			return "meeting"
		case r < 75:
			return "email"
		case r < 90:
			return "task"
		default:
			return "deadline"
		}
	}
	var acts []*activity
	for i := 0; i < 300; i++ {
		typ := typeFor()
		a := &activity{Type: typ, Participants: []participant{}}
		var start, end time.Time
		label := ""
		if rng.IntN(100) < 80 {
			d := deals[rng.IntN(len(deals))]
			a.DealID, a.PersonID, a.OrgID = ptr(d.ID), d.PersonID, d.OrgID
			a.OwnerID = d.OwnerID
			label = s.orgs[*d.OrgID].Name
			start, end = d.AddTime, now.Add(60*day)
			if d.CloseTime != nil {
				end = *d.CloseTime
			}
		} else {
			p := persons[rng.IntN(len(persons))]
			a.PersonID, a.OrgID, a.OwnerID = ptr(p.ID), p.OrgID, p.OwnerID
			label = p.name()
			start, end = p.AddTime, now.Add(30*day)
		}
		if a.PersonID != nil {
			a.Participants = []participant{{PersonID: *a.PersonID, Primary: true}}
		}
		tpl := subjects[typ][rng.IntN(len(subjects[typ]))]
		a.Subject = fmt.Sprintf(tpl, label)
		due := between(start, end)
		if typ == "call" || typ == "meeting" {
			h := 8 + rng.IntN(9)
			m := []int{0, 15, 30, 45}[rng.IntN(4)]
			due = time.Date(due.Year(), due.Month(), due.Day(), h, m, 0, 0, time.UTC)
			a.DueTime = ptr(fmt.Sprintf("%02d:%02d:00", h, m))
			a.Duration = ptr(map[string]string{"call": "00:30:00", "meeting": "01:00:00"}[typ])
			a.Busy = typ == "meeting"
		} else {
			due = time.Date(due.Year(), due.Month(), due.Day(), 0, 0, 0, 0, time.UTC)
		}
		a.DueDate = ptr(due.Format(dateLayout))
		a.AddTime = between(maxTime(start, minTime(due.Add(-20*day), now.Add(-7*day))), minTime(due, now))
		a.CreatorID = a.OwnerID
		a.UpdateTime = a.AddTime
		if due.Before(now) && rng.IntN(100) < 85 {
			a.Done = true
			doneAt := minTime(due.Add(time.Duration(rng.IntN(8))*time.Hour), now)
			doneAt = maxTime(doneAt, a.AddTime)
			a.DoneTime = ptr(doneAt)
			a.UpdateTime = doneAt
		}
		if rng.IntN(10) < 3 {
			a.Note = ptr(activityNotes[rng.IntN(len(activityNotes))])
		}
		acts = append(acts, a)
	}
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].AddTime.Before(acts[j].AddTime) })
	s.activities = map[int]*activity{}
	for i, a := range acts {
		a.ID = i + 1
		s.activities[a.ID] = a
	}
	s.nextActID = len(acts) + 1

	// Custom field values come last: drawing them leaves everything above unchanged.
	s.seedCustomFields(rng)
	s.seedNotes(seed, now)
}

// orgSlug turns an organization name into a domain label: "Margie's Travel" → "margiestravel".
func orgSlug(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// pipelineStages returns the stages of a pipeline in order.
func (s *Server) pipelineStages(pipelineID int) []*stage {
	var out []*stage
	for _, st := range s.stages {
		if st.PipelineID == pipelineID {
			out = append(out, st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OrderNr < out[j].OrderNr })
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
