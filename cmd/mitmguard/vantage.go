package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/mitmguard/mitmguard/measure"
)

// vantageFlags are what an operator declares of the vantage point beside
// its name (probe and worker): mitmguard records them as given, it does
// not look them up.
type vantageFlags struct{ asn, country string }

func addVantageFlags(fl *pflag.FlagSet, f *vantageFlags) {
	fl.StringVar(&f.asn, "vantage-asn", "", "autonomous system `ASN` the vantage point measures from (9198 or AS9198), stored with the campaign")
	fl.StringVar(&f.country, "vantage-country", "", "ISO 3166-1 alpha-2 `CODE` of the country the vantage point measures from (KZ), stored with the campaign")
}

// declaration checks the flags and returns the declaration of the vantage
// point named name; cmdName prefixes the errors.
func (f vantageFlags) declaration(cmdName, name string) (measure.Vantage, error) {
	v := measure.Vantage{Name: name}
	var err error
	if f.asn != "" {
		if v.ASN, err = measure.ParseASN(f.asn); err != nil {
			return v, fmt.Errorf("%s: --vantage-asn: %w", cmdName, err)
		}
	}
	if f.country != "" {
		if v.Country, err = measure.ParseCountry(f.country); err != nil {
			return v, fmt.Errorf("%s: --vantage-country: %w", cmdName, err)
		}
	}
	return v, nil
}
