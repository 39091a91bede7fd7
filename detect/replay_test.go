package detect

import (
	"strings"
	"testing"
)

// Every record of Cloudflare's mitmengine data is replayed: browser records
// must not be judged intercepted, interceptor records must be, with the
// product named. The rates are logged (go test -v -run Replay).
func TestReplayMitmengine(t *testing.T) {
	c := Default()
	var browserOK, browserFP, browserUnknown int
	for _, s := range c.browsers {
		f, code, maj := s.Instance()
		r := c.CheckFeatures(f, code, maj)
		switch {
		case r.Intercepted == nil:
			browserUnknown++
		case *r.Intercepted:
			browserFP++
			if browserFP <= 5 {
				t.Logf("browser record line %d judged intercepted: %s %+v", s.Line, r.Product, r.Reasons)
			}
		default:
			browserOK++
		}
	}
	var mitmOK, mitmNamed int
	for _, s := range c.mitm {
		f, code, maj := s.Instance()
		r := c.CheckFeatures(f, code, maj)
		if r.Intercepted != nil && *r.Intercepted {
			mitmOK++
			if r.Product != "" {
				mitmNamed++
			}
		} else {
			t.Errorf("mitm record line %d (%s) not judged intercepted: %+v", s.Line, s.Product, r.Reasons)
		}
		if strings.HasPrefix(s.Product, "kzmitm") && r.Product != s.Product {
			t.Errorf("the 2019 Kazakh box named %q", r.Product)
		}
	}
	nb, nm := len(c.browsers), len(c.mitm)
	t.Logf("browser records: %d of %d not intercepted (%.1f%%), %d judged intercepted (%.1f%% false positives), %d unknown",
		browserOK, nb, 100*float64(browserOK)/float64(nb), browserFP, 100*float64(browserFP)/float64(nb), browserUnknown)
	t.Logf("interceptor records: %d of %d intercepted (%.1f%%), %d with a product named", mitmOK, nm, 100*float64(mitmOK)/float64(nm), mitmNamed)
	if nb != 1754 || nm != 116 {
		t.Errorf("%d browser and %d interceptor records, want 1754 and 116", nb, nm)
	}
	if browserFP > nb/100 {
		t.Errorf("%d false positives on browser records", browserFP)
	}
}
