package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// lab --drill runs the whole loop, every step ok: the proposal names the
// lab's national root (sent by one box of three), and the guarded client
// ends refused as mitm.known:<the proposed entry>; a tampered and a
// rolled-back publication during the drill are refused while the guard keeps
// enforcing the list in force.
func TestLabDrill(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"lab", "--drill", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("lab --drill exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	var res drillResult
	if err := json.Unmarshal([]byte(out.String()), &res); err != nil {
		t.Fatalf("%v:\n%s", err, out.String())
	}
	if len(res.Steps) != 10 || !strings.HasPrefix(res.Steps[8].Name, "tampered list refused") || !strings.HasPrefix(res.Steps[9].Name, "rolled-back repository refused") {
		t.Fatalf("%d steps:\n%s", len(res.Steps), out.String())
	}
	var proposed string
	for _, s := range res.Steps {
		if !s.OK {
			t.Errorf("step %q failed: %s", s.Name, s.Detail)
		}
		if strings.HasPrefix(s.Name, "report --propose") {
			proposed, _, _ = strings.Cut(s.Detail, " ")
			if !strings.Contains(s.Detail, "CN=mitmguard lab national root") {
				t.Errorf("the proposal does not name the national root: %s", s.Detail)
			}
		}
		if strings.HasPrefix(s.Name, "check") && (!strings.Contains(s.Detail, "root sent: false") || !strings.Contains(s.Detail, "root sent: true")) {
			t.Errorf("check did not name it on a box that sends the root and one that does not: %s", s.Detail)
		}
		t.Logf("%6.2fs %s: %s", s.Seconds, s.Name, s.Detail)
	}
	if proposed == "" || res.FinalOutcome != "mitm.known:"+proposed {
		t.Errorf("final outcome %q, proposed %q", res.FinalOutcome, proposed)
	}
	t.Logf("total %.2fs", res.TotalSeconds)
	// The text form prints each step's time and the total.
	out.Reset()
	if code := run([]string{"lab", "--drill"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "total ") || strings.Count(out.String(), "ok  ") != 10 {
		t.Errorf("lab --drill exited %d:\n%s", code, out.String())
	}
}
