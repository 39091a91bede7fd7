//go:build !linux

package lab

import (
	"context"
	"crypto/x509"
	"errors"
)

type injector struct{}

func openInjector(iface string, targets map[string]Action, f *forger, real *x509.Certificate) (*injector, error) {
	return nil, errors.New("lab: the injecting box reads packets with AF_PACKET, on Linux only")
}

func (*injector) run(ctx context.Context) error { return nil }
func (*injector) close()                        {}
