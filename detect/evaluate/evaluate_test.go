package evaluate

import (
	"strings"
	"testing"

	"github.com/mitmguard/mitmguard/detect"
)

// The development captures (real hellos of 2014-2016 browsers and
// interception products, detect/testdata/captures) meet issue 10's goals:
// at least 90% of the interceptors caught, at most 2% of the browsers
// flagged and none of a version with reference data, every unknown
// explained. The full report is logged (go test -v).
func TestDevelopmentCaptures(t *testing.T) {
	outs, err := Run("../testdata/captures", detect.Default())
	if err != nil {
		t.Fatal(err)
	}
	r := Summarize(outs)
	var b strings.Builder
	r.Print(&b)
	t.Log("\n" + b.String())
	if r.All.Interceptors < 50 || r.All.Browsers < 50 {
		t.Fatalf("only %d interceptor and %d browser hellos counted", r.All.Interceptors, r.All.Browsers)
	}
	for _, f := range r.Failures() {
		t.Error(f)
	}
}
