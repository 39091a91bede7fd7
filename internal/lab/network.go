package lab

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"
)

// NetworkConfig describes a network of lab hosts, as a scan sees them.
type NetworkConfig struct {
	// Hosts gives each host's behaviour towards the targeted domains: Pass
	// for a clean host, Intercept, Reset, Stall or Close for a host behind
	// an interfering middlebox. Host i listens on 127.0.1.(i+1).
	Hosts []Action
	// Domains are the SNIs the middleboxes target.
	Domains []string
	// ForgedKeyBits as in Config (default 2048; tests may use 1024, as the
	// 2019 box did before 19 July 2019).
	ForgedKeyBits int
	// SendsRoot picks, by index as in Hosts, the intercepting hosts whose
	// middlebox sends the national root after the "Security Certificate"
	// intermediate. Real deployments differ: some boxes send the whole
	// chain, others (the 2020 one) never the root, so an analysis must
	// name the root from the hosts that do and attribute the others' chains
	// to it. Hosts past its end send leaf and intermediate only, as the
	// single-host lab does.
	SendsRoot []bool
}

// NetHost is one host of a Network.
type NetHost struct {
	Addr   string // IP:port it listens on
	Name   string // the name its own certificate is for
	Action Action // what it does with targeted SNIs
	// SendsRoot: its middlebox sends the national root with forged chains.
	SendsRoot bool
}

// Network is a running set of hosts on loopback addresses, each with its
// own certificate (answered for any SNI, as a real server's default
// certificate is) and, unless clean, a middlebox in front of it.
type Network struct {
	PublicRoot   *x509.Certificate
	NationalRoot *x509.Certificate
	Hosts        []NetHost
	Domains      []string
	*servers
}

// MaxHosts bounds a network to one /24 of loopback addresses.
const MaxHosts = 254

// StartNetwork starts the hosts. Close the network when done.
func StartNetwork(cfg NetworkConfig) (n *Network, err error) {
	if len(cfg.Hosts) > MaxHosts {
		return nil, fmt.Errorf("lab: at most %d hosts", MaxHosts)
	}
	if cfg.ForgedKeyBits == 0 {
		cfg.ForgedKeyBits = 2048
	}
	now := time.Now()
	p, err := newPKI(now)
	if err != nil {
		return nil, err
	}
	n = &Network{PublicRoot: p.publicRoot.cert, NationalRoot: p.national.cert, Domains: cfg.Domains, servers: newServers()}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	// One forger per chain the boxes send; each host's key is made by the
	// one its box uses.
	partial, full := newForger(p.security, cfg.ForgedKeyBits), newForger(p.security, cfg.ForgedKeyBits, p.national.cert)
	for i, action := range cfg.Hosts {
		ip := fmt.Sprintf("127.0.1.%d", i+1)
		name := fmt.Sprintf("host%d.hosts.mitmguard-lab.net", i+1)
		leaf, key, err := p.publicCA.issueLeaf(name, []string{name}, "", now)
		if err != nil {
			return nil, err
		}
		cert := tls.Certificate{Certificate: [][]byte{leaf.Raw, p.publicCA.cert.Raw}, PrivateKey: key, Leaf: leaf}
		h := NetHost{Name: name, Action: action, SendsRoot: action == Intercept && i < len(cfg.SendsRoot) && cfg.SendsRoot[i]}
		f := partial
		if h.SendsRoot {
			f = full
		}
		if action == Pass {
			if h.Addr, err = n.serveTLS(ip, cert); err != nil {
				return nil, err
			}
		} else {
			if action == Intercept {
				if _, err := f.key(name); err != nil { // now, not in a test's first handshake
					return nil, err
				}
			}
			origin, err := n.serveTLS("127.0.0.1", cert)
			if err != nil {
				return nil, err
			}
			targets := map[string]Action{}
			for _, d := range cfg.Domains {
				targets[d] = action
			}
			if h.Addr, err = n.startMiddlebox(ip, origin, targets, f, p.publicRoot.cert); err != nil {
				return nil, err
			}
		}
		n.Hosts = append(n.Hosts, h)
	}
	return n, nil
}

// Close stops every host.
func (n *Network) Close() error { return n.servers.close() }

// Truth is what a correct measurement must find for (host address, SNI):
// the host's action when the SNI is targeted, else Pass.
func (n *Network) Truth(addr, sni string) Action {
	for _, h := range n.Hosts {
		if h.Addr != addr {
			continue
		}
		for _, d := range n.Domains {
			if d == sni {
				return h.Action
			}
		}
	}
	return Pass
}
