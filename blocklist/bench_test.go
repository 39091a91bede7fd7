package blocklist

import (
	"crypto/x509"
	"os"
	"testing"

	"github.com/mitmguard/mitmguard/chain"
)

func googleChain(b *testing.B) []*x509.Certificate {
	data, err := os.ReadFile("../verdict/testdata/go-x509/www.google.com-2023.pem")
	if err != nil {
		b.Fatal(err)
	}
	c, err := chain.ParsePEM(data)
	if err != nil {
		b.Fatal(err)
	}
	return c.Parsed()
}

// BenchmarkMatchClean is the cost the guard pays on every handshake: a clean
// two-certificate public chain against the embedded list.
func BenchmarkMatchClean(b *testing.B) {
	certs, l := googleChain(b), Embedded()
	for b.Loop() {
		if l.MatchX509(certs) != nil {
			b.Fatal("matched")
		}
	}
}

// BenchmarkMatchCompleted is the worst case: the blocked root is not sent and
// is found by a signature check on the certificate it issued.
func BenchmarkMatchCompleted(b *testing.B) {
	certs := googleChain(b)
	l, err := FromPEM([]byte(chain.FromX509(certs[1]).PEM()), "bench")
	if err != nil {
		b.Fatal(err)
	}
	leaf := certs[:1]
	for b.Loop() {
		if m := l.MatchX509(leaf); m == nil || !m.Completed {
			b.Fatal("no completion")
		}
	}
}
