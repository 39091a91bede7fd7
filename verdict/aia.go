package verdict

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxAIABytes bounds an issuer download; real ones are under 3 KB.
const maxAIABytes = 64 << 10

// HTTPFetcher returns an Options.FetchIssuer that downloads an issuer
// certificate (DER, or PEM as some CAs serve it) from an http or https AIA
// URL with the given client (nil: http.DefaultClient). The context bounds it.
func HTTPFetcher(client *http.Client) func(context.Context, string) (*x509.Certificate, error) {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context, url string) (*x509.Certificate, error) {
		if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
			return nil, fmt.Errorf("verdict: AIA URL %q is not http(s)", url)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("verdict: AIA %s: %s", url, resp.Status)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxAIABytes))
		if err != nil {
			return nil, err
		}
		if b, _ := pem.Decode(body); b != nil {
			body = b.Bytes
		}
		return x509.ParseCertificate(body)
	}
}
