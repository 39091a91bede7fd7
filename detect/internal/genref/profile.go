package main

import (
	"encoding/hex"
	"fmt"
	"slices"
	"sort"

	"github.com/mitmguard/mitmguard/detect"
)

// addBrowser merges sampled ClientHellos of a browser version into the
// stack's profile.
func addBrowser(r *detect.Reference, stack, source string, minMajor, major int, raws [][]byte) error {
	var p *detect.Profile
	for _, q := range r.Browsers {
		if q.Stack == stack {
			p = q
		}
	}
	if p == nil {
		p = &detect.Profile{Stack: stack, MinMajor: minMajor, GREASE: true}
		r.Browsers = append(r.Browsers, p)
	}
	p.Sources = append(p.Sources, source)
	p.MinMajor = min(p.MinMajor, minMajor)
	p.MaxMajor = max(p.MaxMajor, major)
	first := len(p.CipherOrders) == 0 && len(p.RequiredExtensions) == 0
	permutes := false
	var orders [][]uint16
	for _, raw := range raws {
		ch, err := detect.Parse(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		f := detect.FeaturesOf(ch)
		p.GREASE = p.GREASE && f.GREASE
		p.Ciphers = union(p.Ciphers, f.Ciphers)
		p.Extensions = union(p.Extensions, f.Exts)
		p.Groups = union(p.Groups, f.Curves)
		if first {
			p.RequiredExtensions, first = slices.Clone(f.Exts), false
		} else {
			p.RequiredExtensions = intersect(p.RequiredExtensions, f.Exts)
		}
		p.CipherOrders = addOrder(p.CipherOrders, f.Ciphers)
		if len(orders) > 0 && !slices.Equal(orders[0], f.Exts) && sameSet(orders[0], f.Exts) {
			permutes = true
		}
		orders = addOrder(orders, f.Exts)
		p.MaxVersion = max(p.MaxVersion, ch.MaxVersion())
	}
	sort.Slice(p.RequiredExtensions, func(i, j int) bool { return p.RequiredExtensions[i] < p.RequiredExtensions[j] })
	if permutes || p.Stack == "chromium" {
		p.ExtensionOrders = nil // Chrome permutes its extensions since version 106
	} else {
		for _, o := range orders {
			p.ExtensionOrders = addOrder(p.ExtensionOrders, o)
		}
	}
	return nil
}

// addStack records a non-browser stack's hellos.
func addStack(r *detect.Reference, product string, raws [][]byte) {
	s := &detect.Stack{Product: product}
	for _, raw := range raws {
		if ch, err := detect.Parse(raw); err == nil {
			ja4, _ := ch.JA4()
			if !slices.Contains(s.JA4, ja4) {
				s.JA4 = append(s.JA4, ja4)
			}
			s.Samples = append(s.Samples, hex.EncodeToString(raw))
		}
	}
	r.Stacks = append(r.Stacks, s)
}

func union(a, b []uint16) []uint16 {
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a, v)
		}
	}
	return a
}

func sameSet(a, b []uint16) bool {
	return len(a) == len(b) && len(intersect(a, b)) == len(a)
}

func addOrder(orders [][]uint16, o []uint16) [][]uint16 {
	for _, x := range orders {
		if slices.Equal(x, o) {
			return orders
		}
	}
	return append(orders, slices.Clone(o))
}

func intersect(a, b []uint16) []uint16 {
	var out []uint16
	for _, v := range a {
		if slices.Contains(b, v) {
			out = append(out, v)
		}
	}
	return out
}
