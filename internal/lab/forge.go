package lab

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"sync"
	"time"
)

// ForgeryShift is how far the forged validity is moved back, as the 2019 box
// did (6 hours until 2019-07-30).
const ForgeryShift = 6 * time.Hour

// serialLowBits are the bits of the real serial the forger replaces.
const serialLowBits = 33

// forger makes forged certificates, one per origin certificate, with one RSA
// key per host, as the Kazakh box did.
type forger struct {
	ca      *issuer // the "Security Certificate" intermediate
	keyBits int
	// above are the certificates sent after the forged leaf: the
	// intermediate, then the root on boxes that send it.
	above [][]byte

	mu    sync.Mutex
	keys  map[string]func() (*rsa.PrivateKey, error) // by host; each made once
	certs map[string]*tls.Certificate                // by the real certificate's bytes
}

// newForger makes a forger that signs with ca and sends ca's certificate,
// then alsoSend (the root, as some deployments' boxes do), after each leaf.
func newForger(ca *issuer, keyBits int, alsoSend ...*x509.Certificate) *forger {
	above := [][]byte{ca.cert.Raw}
	for _, c := range alsoSend {
		above = append(above, c.Raw)
	}
	return &forger{ca: ca, keyBits: keyBits, above: above, keys: map[string]func() (*rsa.PrivateKey, error){}, certs: map[string]*tls.Certificate{}}
}

// key returns the host's RSA key, generating it once even when several
// connections ask at the same time.
func (f *forger) key(host string) (*rsa.PrivateKey, error) {
	f.mu.Lock()
	k, ok := f.keys[host]
	if !ok {
		k = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsaKeyE3(f.keyBits) })
		f.keys[host] = k
	}
	f.mu.Unlock()
	return k()
}

// forge returns a certificate that impersonates real.
func (f *forger) forge(real *x509.Certificate) (*tls.Certificate, error) {
	f.mu.Lock()
	c := f.certs[string(real.Raw)]
	f.mu.Unlock()
	if c != nil {
		return c, nil
	}
	host := real.Subject.CommonName
	if len(real.DNSNames) > 0 {
		host = real.DNSNames[0]
	}
	key, err := f.key(host)
	if err != nil {
		return nil, err
	}
	low, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), serialLowBits))
	if err != nil {
		return nil, err
	}
	serial := new(big.Int).Rsh(real.SerialNumber, serialLowBits)
	serial.Lsh(serial, serialLowBits).Or(serial, low)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		RawSubject:   real.RawSubject, // copied from the real certificate, not from the SNI
		DNSNames:     real.DNSNames,
		IPAddresses:  real.IPAddresses,
		NotBefore:    real.NotBefore.Add(-ForgeryShift),
		NotAfter:     real.NotAfter.Add(-ForgeryShift),
		// No key usage, extended key usage or basic constraints: the box
		// dropped every extension but the names.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca.cert, &key.PublicKey, f.ca.key)
	if err != nil {
		return nil, err
	}
	c = &tls.Certificate{Certificate: append([][]byte{der}, f.above...), PrivateKey: key}
	f.mu.Lock()
	f.certs[string(real.Raw)] = c
	f.mu.Unlock()
	return c, nil
}

// rsaKeyE3 generates an RSA key with public exponent 3, the weak exponent
// the 2019 box used (rsa.GenerateKey always uses 65537). Such keys verify
// correctly; they are one of the traits that give the forger away.
func rsaKeyE3(bits int) (*rsa.PrivateKey, error) {
	e, one := big.NewInt(3), big.NewInt(1)
	for {
		p, err := rand.Prime(rand.Reader, bits/2)
		if err != nil {
			return nil, err
		}
		q, err := rand.Prime(rand.Reader, bits-bits/2)
		if err != nil {
			return nil, err
		}
		pm, qm := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		if p.Cmp(q) == 0 || new(big.Int).Mod(pm, e).Sign() == 0 || new(big.Int).Mod(qm, e).Sign() == 0 {
			continue // 3 must be invertible modulo (p-1)(q-1)
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		k := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: n, E: 3},
			D:         new(big.Int).ModInverse(e, new(big.Int).Mul(pm, qm)),
			Primes:    []*big.Int{p, q},
		}
		k.Precompute()
		return k, k.Validate()
	}
}
