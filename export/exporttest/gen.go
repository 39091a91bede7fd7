// Package exporttest fills a store with a synthetic campaign shaped like a
// real one (per vantage point a share of hosts intercepting the targeted
// domains with one forged chain per domain, the rest answering with their
// own certificates, some blocked, some unreachable), written through the
// store API. Export's tests, its DuckDB read-back and bench/export.sh use it.
package exporttest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"time"

	"github.com/mitmguard/mitmguard/chain"
	"github.com/mitmguard/mitmguard/measure"
	"github.com/mitmguard/mitmguard/outcome"
	"github.com/mitmguard/mitmguard/store"
)

// Spec shapes a synthetic campaign.
type Spec struct {
	Campaign string
	Start    time.Time // first record's time; records are spread over Span
	Span     time.Duration
	Hosts    int
	Domains  []string // the first Targeted are intercepted on intercepting hosts
	Targeted int
	// Vantages and, per vantage, the share of hosts that intercept.
	Vantages  []string
	Intercept []float64
	Seed      uint64
	Batch     int // hosts per store write (default 500)
}

// Records is the number of records the spec makes.
func (s Spec) Records() int { return s.Hosts * len(s.Domains) * len(s.Vantages) }

// Fill creates the campaign and writes it.
func Fill(ctx context.Context, st store.Store, s Spec) (*store.Campaign, error) {
	c := &store.Campaign{ID: s.Campaign, Started: s.Start, Params: "{}"}
	if err := st.CreateCampaign(ctx, c); err != nil {
		return nil, err
	}
	if s.Batch <= 0 {
		s.Batch = 500
	}
	g, err := newGen(s)
	if err != nil {
		return nil, err
	}
	for vi, v := range s.Vantages {
		var batch []*measure.HostResult
		for h := 0; h < s.Hosts; h++ {
			hr, err := g.host(vi, v, h)
			if err != nil {
				return nil, err
			}
			batch = append(batch, hr)
			if len(batch) == s.Batch || h == s.Hosts-1 {
				if _, err := st.Write(ctx, c, batch); err != nil {
					return nil, err
				}
				batch = batch[:0]
			}
		}
	}
	return c, nil
}

type gen struct {
	s      Spec
	rnd    *mrand.Rand
	key    ed25519.PrivateKey
	root   []byte   // the interception root
	inter  []byte   // a public intermediate many hosts chain to
	forged [][]byte // one forged leaf per targeted domain
	real   [][]byte // each domain's genuine leaf (a CDN's)
}

func newGen(s Spec) (*gen, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	g := &gen{s: s, rnd: mrand.New(mrand.NewPCG(s.Seed, 0x6d69746d)), key: key}
	if g.root, err = g.cert("Security Certificate", 1); err != nil {
		return nil, err
	}
	if g.inter, err = g.cert("Public Intermediate CA", 2); err != nil {
		return nil, err
	}
	for i, d := range s.Domains {
		if i < s.Targeted {
			f, err := g.cert(d, int64(100+i))
			if err != nil {
				return nil, err
			}
			g.forged = append(g.forged, f)
		}
		r, err := g.cert(d, int64(200+i))
		if err != nil {
			return nil, err
		}
		g.real = append(g.real, r)
	}
	return g, nil
}

// cert makes a small real certificate (Ed25519), distinct per serial.
func (g *gen) cert(cn string, serial int64) ([]byte, error) {
	t := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(1900000000, 0), DNSNames: []string{cn}}
	return x509.CreateCertificate(rand.Reader, t, t, g.key.Public(), g.key)
}

func hashOf(der []byte) chain.Hash { return chain.Hash(sha256.Sum256(der)) }

func (g *gen) host(vi int, vantage string, h int) (*measure.HostResult, error) {
	addr := fmt.Sprintf("10.%d.%d.%d:443", h>>16&255, h>>8&255, h&255)
	own, err := g.cert(addr, int64(1000+h)) // the same host shows the same certificate from every vantage
	if err != nil {
		return nil, err
	}
	ownChain := []chain.Hash{hashOf(own), hashOf(g.inter)}
	hr := &measure.HostResult{
		Control: measure.Control{Vantage: vantage, Host: addr, SNI: "control.invalid", Outcome: outcome.InvalidHostname, Chain: ownChain},
		Certs:   [][]byte{own, g.inter},
	}
	intercepts := g.rnd.Float64() < g.s.Intercept[vi]
	blocked := g.rnd.Float64() < 0.08
	down := g.rnd.Float64() < 0.05
	for di, d := range g.s.Domains {
		r := measure.Record{Vantage: vantage, Host: addr, SNI: d, Attempts: 1,
			// Vantage points measure the same hosts side by side in time.
			Time: g.s.Start.Add(time.Duration(int64(g.s.Span) * int64(h*len(g.s.Domains)+di) / int64(max(g.s.Hosts*len(g.s.Domains), 1)))).Truncate(time.Millisecond),
			MS:   float64(20 + g.rnd.IntN(400))}
		switch {
		case down:
			r.Outcome, r.Error, r.Attempts = outcome.ErrorDial, "connect: connection refused", 3
		case intercepts && di < g.s.Targeted:
			r.Outcome = outcome.Known("kz-2019")
			r.Chain = []chain.Hash{hashOf(g.forged[di]), hashOf(g.root)}
			r.Issuer, r.Traits = "Security Certificate", []string{"short_validity", "same_key"}
			hr.Certs = append(hr.Certs, g.forged[di], g.root)
		case blocked && di < g.s.Targeted:
			r.Outcome = outcome.BlockedReset
		case g.rnd.IntN(4) == 0:
			r.Outcome, r.Chain = outcome.OK, []chain.Hash{hashOf(g.real[di]), hashOf(g.inter)}
			hr.Certs = append(hr.Certs, g.real[di])
		default:
			r.Outcome, r.Chain = outcome.InvalidHostname, ownChain
		}
		hr.Records = append(hr.Records, r)
	}
	return hr, nil
}
