package measure_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/blocklist"
	"github.com/mitmguard/mitmguard/internal/lab"
	"github.com/mitmguard/mitmguard/internal/leak"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
	"github.com/mitmguard/mitmguard/verdict"
)

var (
	targeted   = []string{"facebook.com", "www.google.com", "vk.com", "mail.ru", "youtube.com", "ok.ru"}
	untargeted = []string{"en.wikipedia.org", "github.com", "www.bbc.co.uk"}
)

// labHosts: 24 hosts, clean and interfering in every way the lab knows.
func labHosts() []lab.Action {
	var hosts []lab.Action
	for i := 0; i < 24; i++ {
		hosts = append(hosts, []lab.Action{lab.Pass, lab.Intercept, lab.Pass, lab.Reset, lab.Intercept, lab.Stall, lab.Pass, lab.Close}[i%8])
	}
	return hosts
}

func wantOutcome(a lab.Action, known outcome.Outcome) outcome.Outcome {
	switch a {
	case lab.Intercept:
		return known
	case lab.Reset:
		return outcome.BlockedReset
	case lab.Stall:
		return outcome.BlockedTimeout
	case lab.Close:
		return outcome.BlockedClosed
	}
	return outcome.OK
}

func startNetwork(t testing.TB) *lab.Network {
	t.Helper()
	n, err := lab.StartNetwork(lab.NetworkConfig{Hosts: labHosts(), Domains: targeted, ForgedKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func feed(addrs ...string) <-chan string {
	ch := make(chan string, len(addrs))
	for _, a := range addrs {
		ch <- a
	}
	close(ch)
	return ch
}

// A campaign over the lab network finds exactly the lab's truth for every
// (host, SNI) pair, with and without the lab's root on the blocklist.
func TestCampaignMatchesLabTruth(t *testing.T) {
	n := startNetwork(t)
	withNational, knownID := lab.Blocklist(n.NationalRoot)
	for _, tc := range []struct {
		name  string
		list  *blocklist.List
		known outcome.Outcome
	}{
		{"suspected", blocklist.Embedded(), outcome.Suspected},
		{"known", withNational, outcome.Known(knownID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			c := &store.Campaign{ID: "test-" + tc.name, Started: time.Now(), Params: "{}"}
			if err := st.CreateCampaign(context.Background(), c); err != nil {
				t.Fatal(err)
			}
			var jsonl bytes.Buffer
			cfg := measure.Config{
				Domains: append(append([]string{}, targeted...), untargeted...), Concurrency: 16, PerHost: 3, Rate: 200,
				// The timeouts bound only the lab's stalls: on a busy machine
				// (load 10 on 2 cores, -race) an honest handshake takes
				// seconds, and one that outlasts its timeout reads as
				// blocked.timeout, or its host's control as failed.
				Timeout: 30 * time.Second, MinTimeout: 3 * time.Second,
				Classifier: verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{n.PublicRoot}, Blocklist: tc.list}),
				JSONL:      measure.NewJSONL(&jsonl, c.ID),
			}
			var addrs []string
			for _, h := range n.Hosts {
				addrs = append(addrs, h.Addr)
			}
			stats, err := measure.Run(context.Background(), cfg, store.Bind(st, c), feed(addrs...), false)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Hosts != len(n.Hosts) || stats.Pairs != len(n.Hosts)*len(cfg.Domains) {
				t.Fatalf("stats %+v", stats)
			}
			seen := 0
			err = st.Records(context.Background(), c, func(r measure.Record, ctl measure.Control) error {
				seen++
				want := wantOutcome(n.Truth(r.Host, r.SNI), tc.known)
				if r.Outcome != want {
					t.Errorf("%s %s: %s (%s), want %s", r.Host, r.SNI, r.Outcome, r.Error, want)
				}
				if ctl.Outcome != outcome.OK || len(ctl.Chain) != 2 {
					t.Errorf("%s: control %+v", r.Host, ctl)
				}
				if r.Outcome.Intercepted() {
					if !strings.Contains(r.Issuer, "national root") || !strings.Contains(strings.Join(r.Traits, ","), measure.TraitRSAExponent3) {
						t.Errorf("%s %s: issuer %q traits %v", r.Host, r.SNI, r.Issuer, r.Traits)
					}
				}
				return nil
			})
			if err != nil || seen != stats.Pairs {
				t.Fatalf("records: %d, %v", seen, err)
			}
			// The JSON Lines carry the same records, and each certificate once.
			records, certs := 0, map[string]bool{}
			sc := bufio.NewScanner(&jsonl)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var line struct {
					Type, SHA256, Outcome string
					Control               struct{ Chain []string }
				}
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatal(err)
				}
				switch line.Type {
				case "record":
					records++
					for _, h := range line.Control.Chain {
						if !certs[h] {
							t.Errorf("record refers to certificate %s before it was written", h)
						}
					}
				case "certificate":
					if certs[line.SHA256] {
						t.Errorf("certificate %s written twice", line.SHA256)
					}
					certs[line.SHA256] = true
				}
			}
			if records != stats.Pairs {
				t.Errorf("%d JSONL records, want %d", records, stats.Pairs)
			}
		})
	}
}

func TestReadHosts(t *testing.T) {
	in := "# lab\n127.0.0.1:8443\n127.0.0.2\n10.1.2.3:443\n127.0.2.0/30:9000  # a small net\n::1\n[::1]:444\n"
	ch := make(chan string, 100)
	skipped, err := measure.ReadHosts(context.Background(), strings.NewReader(in), measure.DefaultExcluded, ch)
	close(ch)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for h := range ch {
		got = append(got, h)
	}
	want := "127.0.0.1:8443 127.0.0.2:443 127.0.2.0:9000 127.0.2.1:9000 127.0.2.2:9000 127.0.2.3:9000 [::1]:443 [::1]:444"
	if strings.Join(got, " ") != want || skipped != 1 {
		t.Errorf("got %v (skipped %d)", got, skipped)
	}
	for _, bad := range []string{"example.com", "1.2.3.4:0", "1.2.3.4:99999", "10.0.0.0/8", "1.2.3.4/40"} {
		_, err := measure.ReadHosts(context.Background(), strings.NewReader("127.0.0.1\n"+bad+"\n"), nil, make(chan string, 10))
		if le, ok := err.(*measure.LineError); !ok || le.Line != 2 {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Stopping a campaign (Ctrl-C) ends every goroutine, keeps every host that
// was finished, and keeps no host half recorded.
func TestStopMidway(t *testing.T) {
	n := startNetwork(t)
	st, err := store.Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &store.Campaign{ID: "stopped", Started: time.Now(), Params: "{}"}
	if err := st.CreateCampaign(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	domains := append(append([]string{}, targeted...), untargeted...)
	var addrs []string
	for _, h := range n.Hosts {
		addrs = append(addrs, h.Addr)
	}
	leak.Check(t, 0, func() {
		ctx, cancel := context.WithCancel(context.Background())
		cfg := measure.Config{Domains: domains, Concurrency: 2, PerHost: 1, Timeout: 2 * time.Second,
			Classifier: verdict.New(verdict.Options{ExtraRoots: []*x509.Certificate{n.PublicRoot}}),
			Progress: func(p measure.Progress) {
				if p.Hosts >= 3 {
					cancel()
				}
			}}
		_, err := measure.Run(ctx, cfg, store.Bind(st, c), feed(addrs...), false)
		if err != context.Canceled {
			t.Errorf("Run: %v", err)
		}
	})
	k, err := st.Count(context.Background(), c)
	if err != nil || k == 0 || k%len(domains) != 0 || k == len(addrs)*len(domains) {
		t.Fatalf("%d records after a stop (%v)", k, err)
	}
}

func TestReadExclusionsAndDomains(t *testing.T) {
	ex, err := measure.ReadExclusions(strings.NewReader("# mine\n203.0.113.7\n198.51.100.0/24 # docs\n2001:db8::1\n"))
	if err != nil || len(ex) != 3 || ex[0].Bits() != 32 || ex[2].Bits() != 128 {
		t.Fatalf("%v %v", ex, err)
	}
	if _, err := measure.ReadExclusions(strings.NewReader("nope\n")); err == nil {
		t.Error("bad exclusion accepted")
	}
	d, err := measure.ReadDomains(strings.NewReader("Facebook.com.\nfacebook.com\n# x\nvk.com\n"))
	if err != nil || strings.Join(d, ",") != "facebook.com,vk.com" {
		t.Fatalf("%v %v", d, err)
	}
}
