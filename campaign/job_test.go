package campaign

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func validJob() *Job {
	return &Job{Version: Version, Campaign: "20261125T120000-3fa2", Vantage: "almaty_kt", Seq: 1, Hosts: []string{"192.0.2.1:443", "[2001:db8::1]:8443"}}
}

func TestJobRoundTrip(t *testing.T) {
	j := validJob()
	b, err := j.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseJob(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.MsgID() != "20261125T120000-3fa2/almaty_kt/1" || got.Subject() != "mitmguard.jobs.almaty_kt.20261125T120000-3fa2" || len(got.Hosts) != 2 {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestParseJobRefuses(t *testing.T) {
	many := make([]string, MaxBatch+1)
	for i := range many {
		many[i] = "192.0.2.1:443"
	}
	for name, mutate := range map[string]func(*Job){
		"version":        func(j *Job) { j.Version = 2 },
		"campaign empty": func(j *Job) { j.Campaign = "" },
		"campaign dot":   func(j *Job) { j.Campaign = "a.b" },
		"campaign star":  func(j *Job) { j.Campaign = "*" },
		"campaign long":  func(j *Job) { j.Campaign = strings.Repeat("a", 65) },
		"vantage dash":   func(j *Job) { j.Vantage = "-a" },
		"vantage space":  func(j *Job) { j.Vantage = "a b" },
		"seq":            func(j *Job) { j.Seq = 0 },
		"no hosts":       func(j *Job) { j.Hosts = nil },
		"too many":       func(j *Job) { j.Hosts = many },
		"name":           func(j *Job) { j.Hosts = []string{"example.com:443"} },
		"no port":        func(j *Job) { j.Hosts = []string{"192.0.2.1"} },
		"port 0":         func(j *Job) { j.Hosts = []string{"192.0.2.1:0"} },
		"zone":           func(j *Job) { j.Hosts = []string{"[fe80::1%eth0]:443"} },
	} {
		j := validJob()
		mutate(j)
		b, _ := json.Marshal(j)
		var fe *FormatError
		if _, err := ParseJob(b); !errors.As(err, &fe) {
			t.Errorf("%s: ParseJob = %v, want a FormatError", name, err)
		}
		if _, err := j.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted it", name)
		}
	}
	for name, b := range map[string]string{
		"trailing": `{"v":1,"campaign":"c","vantage":"v","seq":1,"hosts":["192.0.2.1:443"]} {}`,
		"array":    `[1]`,
		"huge":     `{"v":1,"pad":"` + strings.Repeat("x", MaxJobBytes) + `"}`,
		"empty":    ``,
	} {
		if _, err := ParseJob([]byte(b)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func validSpec() *Spec {
	return &Spec{
		Version: Version, ID: "c1", Vantages: []string{"kz", "us"}, Domains: []string{"facebook.com"},
		ControlDomains: []string{"ctl-1.control.mitmguard.invalid"}, Limits: Limits{TimeoutMS: 5000},
		Hosts: 250, Batch: 100, Jobs: 3, Fingerprint: strings.Repeat("ab", 32), State: StateSubmitted,
		Created: time.Unix(1, 0).UTC(),
	}
}

func TestSpecRoundTrip(t *testing.T) {
	b, err := validSpec().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Limits.Timeout() != 5*time.Second || s.Jobs != 3 {
		t.Fatalf("round trip: %+v", s)
	}
}

func TestParseSpecRefuses(t *testing.T) {
	for name, mutate := range map[string]func(*Spec){
		"version":      func(s *Spec) { s.Version = 0 },
		"no vantage":   func(s *Spec) { s.Vantages = nil },
		"dup vantage":  func(s *Spec) { s.Vantages = []string{"kz", "kz"} },
		"bad vantage":  func(s *Spec) { s.Vantages = []string{"k>"} },
		"no domains":   func(s *Spec) { s.Domains = nil },
		"bad domain":   func(s *Spec) { s.Domains = []string{"a b"} },
		"jobs":         func(s *Spec) { s.Jobs = 2 },
		"batch":        func(s *Spec) { s.Batch = 0 },
		"state":        func(s *Spec) { s.State = "done" },
		"roots":        func(s *Spec) { s.Roots = "not pem" },
		"timeout":      func(s *Spec) { s.Limits.TimeoutMS = -1 },
		"rate NaN-ish": func(s *Spec) { s.Limits.Rate = 1e9 },
		"fingerprint":  func(s *Spec) { s.Fingerprint = "x" },
	} {
		s := validSpec()
		mutate(s)
		b, _ := json.Marshal(s)
		if _, err := ParseSpec(b); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func FuzzParseJob(f *testing.F) {
	b, _ := validJob().Marshal()
	f.Add(b)
	f.Add([]byte(`{"v":1,"campaign":"c","vantage":"v","seq":1,"hosts":["[::1]:1"]}`))
	f.Add([]byte(`{"v":1,"hosts":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := ParseJob(data)
		if err != nil {
			return
		}
		// Whatever parses is a valid job that writes and reads back the same.
		out, err := j.Marshal()
		if err != nil {
			t.Fatalf("parsed job does not marshal: %v", err)
		}
		j2, err := ParseJob(out)
		if err != nil || j2.MsgID() != j.MsgID() || len(j2.Hosts) != len(j.Hosts) {
			t.Fatalf("round trip changed the job: %v", err)
		}
		if strings.ContainsAny(j.Subject()[len(SubjectPrefix)+1:], "*> ") || strings.Count(j.Subject(), ".") != 3 {
			t.Fatalf("job subject %q is not four plain tokens", j.Subject())
		}
	})
}

func FuzzParseSpec(f *testing.F) {
	b, _ := validSpec().Marshal()
	f.Add(b)
	f.Add([]byte(`{"v":1,"id":"x","vantages":["a"],"domains":["d"],"batch":1,"state":"submitted"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			return
		}
		out, err := s.Marshal()
		if err != nil {
			t.Fatalf("parsed spec does not marshal: %v", err)
		}
		if _, err := ParseSpec(out); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}
