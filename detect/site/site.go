// Package site is the example site mitmguard serve runs: a page that tells
// each visitor whether their connection looks intercepted and why, with the
// verdict as JSON, over detect's capture and middleware.
package site

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"html/template"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/mitmguard/mitmguard/detect/detecthttp"
)

// pageHTML is the page mitmguard serve shows.
const pageHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Is my connection intercepted?</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46em;margin:2em auto;padding:0 1em}
.warn{border:2px solid #c0392b;background:#fdecea;padding:1em;border-radius:6px}
.ok{border:2px solid #27ae60;background:#eafaf1;padding:1em;border-radius:6px}
.unknown{border:2px solid #999;background:#f4f4f4;padding:1em;border-radius:6px} code{font-size:.9em}</style></head>
<body><h1>Is my connection intercepted?</h1>
{{if .Intercepted}}{{if deref .Intercepted}}
<div class="warn"><h2>Your connection to this site is being monitored</h2>
<p>The encrypted connection that reached this server was not made by your browser{{if .Browser.Family}} ({{.Browser.Family}} {{.Browser.Major}}){{end}}:
something between you and this site{{if .Product}} — it looks like <b>{{.Product}}</b> —{{end}} opened it in your place and can read what you send.</p>
<ul><li>If your government, employer or an antivirus told you to install a certificate, remove it: <code>mitmguard audit</code> shows where it is.</li>
<li>Until then, use a VPN or Tor, which the interception cannot read into.</li>
<li>Change the passwords you used over such connections: they may have been read.</li></ul></div>
{{else}}<div class="ok"><h2>No sign of interception</h2><p>The connection looks like one your browser{{if .Browser.Family}} ({{.Browser.Family}} {{.Browser.Major}}){{end}} makes itself.</p></div>{{end}}
{{else}}<div class="unknown"><h2>Cannot tell</h2><p>There is no reference for this client{{if .Browser.Family}} ({{.Browser.Family}} {{.Browser.Major}}){{end}} that could tell an intercepted connection from its own; the reasons are below.</p></div>{{end}}
<h3>Why</h3><ul>{{range .Reasons}}<li>{{.What}}{{if .Expected}}: expected <code>{{.Expected}}</code>{{end}}{{if .Seen}}, seen <code>{{.Seen}}</code>{{end}}</li>{{else}}<li>the ClientHello fits the browser the User-Agent names</li>{{end}}</ul>
{{if .Weakened}}<h3>Weaker than your browser's own connection</h3><ul>{{range .Weakened}}<li>{{.}}</li>{{end}}</ul>{{end}}
<p>JA4 <code>{{.JA4}}</code> &middot; JA3 <code>{{.JA3Hash}}</code> &middot; <a href="/mitmguard/verdict">as JSON</a></p>
</body></html>`

var page = template.Must(template.New("page").Funcs(template.FuncMap{"deref": func(b *bool) bool { return *b }}).Parse(pageHTML))

// Handler is a small site that tells each visitor whether their connection
// looks intercepted and why, with the verdict as JSON at
// /mitmguard/verdict: the example mitmguard serve runs.
func Handler(opts detecthttp.Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/mitmguard/verdict", detecthttp.VerdictHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := page.Execute(w, detecthttp.ResultFrom(r.Context())); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	return detecthttp.Middleware(mux, opts)
}

// SelfSigned makes a self-signed server certificate for localhost, the
// loopback addresses and the host of listen (an ADDR:PORT), for a server
// like mitmguard serve that has no certificate of its own.
func SelfSigned(listen string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "mitmguard serve"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if host, _, err := net.SplitHostPort(listen); err == nil && host != "" {
		if ip := net.ParseIP(host); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
