package measure_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mitmguard/mitmguard/measure"
)

func TestParseASN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint32
		bad  string
	}{
		{in: "9198", want: 9198},
		{in: "AS9198", want: 9198},
		{in: "as9198", want: 9198},
		{in: "4294967295", want: 4294967295},
		{in: "AS4294967296", bad: "largest 32-bit"},
		{in: "99999999999", bad: "want a number"},
		{in: "0", bad: "reserved"},
		{in: "AS", bad: "want a number"},
		{in: "", bad: "want a number"},
		{in: "-1", bad: "want a number"},
		{in: "+5", bad: "want a number"},
		{in: "AS 9198", bad: "want a number"},
		{in: "9198.5", bad: "want a number"},
		{in: "٩١٩٨", bad: "want a number"}, // Arabic-Indic digits
	} {
		got, err := measure.ParseASN(tc.in)
		var ve *measure.VantageError
		switch {
		case tc.bad == "" && (err != nil || got != tc.want):
			t.Errorf("ParseASN(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.bad != "" && (!errors.As(err, &ve) || ve.Field != "ASN" || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("ParseASN(%q) = %d, %v; want an error saying %q", tc.in, got, err, tc.bad)
		}
	}
}

func TestParseCountry(t *testing.T) {
	for in, want := range map[string]string{"KZ": "KZ", "kz": "KZ", "Us": "US", "": "", "KAZ": "", "K": "", "K1": "", "ÄB": "", "k\x00": ""} {
		got, err := measure.ParseCountry(in)
		if want == "" && err == nil || want != "" && (err != nil || got != want) {
			t.Errorf("ParseCountry(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// What a database hands back is checked as strictly as the flags.
func TestVantageCheck(t *testing.T) {
	good := []measure.Vantage{{Name: "local"}, {Name: "kz-almaty.1", ASN: 9198, Country: "KZ"}}
	bad := []measure.Vantage{{Name: ""}, {Name: "a b"}, {Name: "\x1b[2J"}, {Name: strings.Repeat("a", 65)},
		{Name: "x", Country: "kz"}, {Name: "x", Country: "KAZ"}, {Name: "x", Country: "=1"}}
	for _, v := range good {
		if err := v.Check(); err != nil {
			t.Errorf("%+v: %v", v, err)
		}
	}
	for _, v := range bad {
		if err := v.Check(); err == nil {
			t.Errorf("%+v accepted", v)
		}
	}
}

func TestVantageConflicts(t *testing.T) {
	stored := measure.Vantage{Name: "a", ASN: 9198}
	for _, tc := range []struct {
		declared measure.Vantage
		want     bool
	}{
		{measure.Vantage{Name: "a"}, false},
		{measure.Vantage{Name: "a", ASN: 9198, Country: "KZ"}, false}, // fills the country
		{measure.Vantage{Name: "a", ASN: 1}, true},
	} {
		if got := tc.declared.Conflicts(stored); got != tc.want {
			t.Errorf("%+v conflicts with %+v: %v", tc.declared, stored, got)
		}
	}
}

// JSON Lines records carry their vantage point's declaration, and leave
// it out for a vantage point that declared nothing.
func TestJSONLDeclaredVantage(t *testing.T) {
	var b bytes.Buffer
	j := measure.NewJSONL(&b, "c")
	j.Declare(measure.Vantage{Name: "kz", ASN: 9198, Country: "KZ"})
	for _, v := range []string{"kz", "us"} {
		if err := j.Record(measure.Record{Vantage: v, Host: "127.0.0.1:443", SNI: "a.example", Time: time.Unix(0, 0)}, measure.Control{}); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"vantage_asn":9198,"vantage_country":"KZ"`) || strings.Contains(lines[1], "vantage_asn") {
		t.Fatalf("lines:\n%s", b.String())
	}
}

func FuzzParseASN(f *testing.F) {
	for _, s := range []string{"9198", "AS9198", "as0", "4294967296", "", "AS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := measure.ParseASN(s)
		if err != nil {
			return
		}
		if n == 0 || strings.TrimPrefix(strings.ToUpper(s), "AS") != strconv.FormatUint(uint64(n), 10) && strings.TrimLeft(strings.TrimPrefix(strings.ToUpper(s), "AS"), "0") != strconv.FormatUint(uint64(n), 10) {
			t.Fatalf("ParseASN(%q) = %d", s, n)
		}
	})
}
