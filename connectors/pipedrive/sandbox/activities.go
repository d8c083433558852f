package sandbox

import (
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Activity writes: POST /api/v2/activities and PATCH /api/v2/activities/{id}
// share one set of field rules (applyActivity). An update changes only the
// fields its body names; null clears an optional field (due date and time,
// duration, note, location).

var durationRe = regexp.MustCompile(`^\d{1,3}:[0-5]\d(:[0-5]\d)?$`)

// POST /api/v2/activities
func (s *Server) addActivity(r *http.Request) (any, *apiError) {
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	a := &activity{OwnerID: s.meID, CreatorID: s.meID, AddTime: now, UpdateTime: now, Participants: []participant{}}
	if err := s.applyActivity(a, b, now, true); err != nil {
		return nil, err
	}
	a.ID = s.nextActID
	s.nextActID++
	s.activities[a.ID] = a
	return single(a.json(false))
}

// PATCH /api/v2/activities/{id}
func (s *Server) updateActivity(r *http.Request, id int) (any, *apiError) {
	a, found := s.activities[id]
	if !found {
		return nil, notFound()
	}
	b, err := readBody(r)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC().Truncate(time.Second)
	updated := *a
	if err := s.applyActivity(&updated, b, now, false); err != nil {
		return nil, err // a rejected update changes nothing
	}
	updated.UpdateTime = now
	*a = updated
	return single(a.json(false))
}

// applyActivity validates the body and applies it to a (a copy, on update).
// On create a missing type is the first activity type, a blank subject the
// type's name, and a deal brings its person and organization along.
func (s *Server) applyActivity(a *activity, b body, now time.Time, create bool) *apiError {
	typ, err := b.str("type")
	if err != nil {
		return err
	}
	var at *activityType
	switch {
	case typ != nil:
		for _, t := range s.activityTypes {
			if t.Key == *typ {
				at = t
			}
		}
		if at == nil {
			return badRequest("The field 'type' must be an existing activity type key_string")
		}
		a.Type = at.Key
	case create:
		at = s.activityTypes[0]
		a.Type = at.Key
	}
	subject, err := b.str("subject")
	if err != nil {
		return err
	}
	blank := subject == nil || strings.TrimSpace(*subject) == ""
	switch {
	case !blank:
		a.Subject = *subject
	case create:
		a.Subject = at.Name
	default:
		if p, _ := b.present("subject"); p {
			return badRequest("The field 'subject' must not be empty")
		}
	}
	if n, err := b.integer("owner_id"); err != nil {
		return err
	} else if n != nil {
		if *n < 1 || *n > len(s.users) {
			return badRequest("User with id %d does not exist", *n)
		}
		a.OwnerID = *n
	}
	if n, err := b.integer("deal_id"); err != nil {
		return err
	} else if n != nil {
		d, found := s.deals[*n]
		if !found {
			return badRequest("Deal with id %d does not exist", *n)
		}
		a.DealID = ptr(d.ID)
		if create {
			a.PersonID, a.OrgID = d.PersonID, d.OrgID
		}
	}
	if lead, err := b.str("lead_id"); err != nil {
		return err
	} else if lead != nil {
		return badRequest("Lead with id %s does not exist", *lead) // the sandbox company has no leads
	}
	if n, err := b.integer("project_id"); err != nil {
		return err
	} else if n != nil {
		return badRequest("Project with id %d does not exist", *n) // nor projects
	}
	personGiven := false
	if n, err := b.integer("person_id"); err != nil {
		return err
	} else if n != nil {
		if s.persons[*n] == nil {
			return badRequest("Person with id %d does not exist", *n)
		}
		a.PersonID, personGiven = ptr(*n), true
	}
	if n, err := b.integer("org_id"); err != nil {
		return err
	} else if n != nil {
		if s.orgs[*n] == nil {
			return badRequest("Organization with id %d does not exist", *n)
		}
		a.OrgID = ptr(*n)
	}
	if err := setOptional(b, "due_date", &a.DueDate, b.dateField); err != nil {
		return err
	}
	if err := setOptional(b, "due_time", &a.DueTime, b.clockField); err != nil {
		return err
	}
	if err := setOptional(b, "duration", &a.Duration, b.durationField); err != nil {
		return err
	}
	if v, err := b.boolean("busy"); err != nil {
		return err
	} else if v != nil {
		a.Busy = *v
	}
	if v, err := b.boolean("done"); err != nil {
		return err
	} else if v != nil && *v != a.Done {
		a.Done = *v
		a.DoneTime = nil
		if *v {
			a.DoneTime = ptr(now)
		}
	}
	if v, err := b.integer("priority"); err != nil {
		return err
	} else if v != nil {
		a.Priority = v
	}
	if err := setOptional(b, "note", &a.Note, b.str); err != nil {
		return err
	}
	if err := setOptional(b, "public_description", &a.Public, b.str); err != nil {
		return err
	}
	if p, null := b.present("location"); p && null {
		a.Location = nil
	} else if p {
		var loc map[string]string
		if err := unmarshalField(b, "location", &loc); err != nil {
			return err
		}
		a.Location = loc
	}
	if p, null := b.present("participants"); p && !null {
		var parts []participant
		if err := unmarshalField(b, "participants", &parts); err != nil {
			return err
		}
		for _, pt := range parts {
			if s.persons[pt.PersonID] == nil {
				return badRequest("Person with id %d does not exist", pt.PersonID)
			}
		}
		a.Participants = parts
	} else if a.PersonID != nil && (create || personGiven) {
		a.Participants = []participant{{PersonID: *a.PersonID, Primary: true}}
	}
	return nil
}

// setOptional sets *dst from the field when the body has it: parse's value,
// or nil for an explicit null.
func setOptional(b body, name string, dst **string, parse func(string) (*string, *apiError)) *apiError {
	p, null := b.present(name)
	if !p {
		return nil
	}
	if null {
		*dst = nil
		return nil
	}
	v, err := parse(name)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// durationField parses "HH:MM" or "HH:MM:SS" (hours may exceed 23) and
// returns "HH:MM:SS".
func (b body) durationField(name string) (*string, *apiError) {
	dur, err := b.str(name)
	if err != nil || dur == nil {
		return nil, err
	}
	if !durationRe.MatchString(*dur) {
		return nil, badRequest("The field '%s' must be a duration in the format HH:MM", name)
	}
	out := *dur
	if strings.Count(out, ":") == 1 {
		out += ":00"
	}
	if len(out) < 8 {
		out = "0" + out
	}
	return &out, nil
}
