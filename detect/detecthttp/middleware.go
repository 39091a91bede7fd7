package detecthttp

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/mitmguard/mitmguard/detect"
)

// Options configure Middleware. The zero value uses the embedded reference.
type Options struct {
	Checker *detect.Checker
	// Header, if set, is the response header that carries the verdict
	// ("yes", "no" or "unknown", then "; product=..." when known).
	Header string
	// OnResult, if set, is called for every request with its verdict: to
	// log it, count it, or decide to show a warning.
	OnResult func(*http.Request, *detect.Result)
}

type resultKey struct{}

// Middleware judges the connection each request came over and puts the
// *Result into the request's context (ResultFrom). The server must accept
// through NewListener and set ConnContext; without them the result says the
// ClientHello was not captured.
//
// Set the http.Server's timeouts as for any public server: the capture keeps
// a connection's raw ClientHello (up to MaxCapture bytes) until the first
// request is judged, and then a few hundred bytes for the connection's life,
// so a server without timeouts lets idle or silent clients hold memory for
// ever. mitmguard serve uses ReadHeaderTimeout 10s (it also bounds the TLS
// handshake), ReadTimeout 30s, WriteTimeout 30s and IdleTimeout 60s.
func Middleware(next http.Handler, opts Options) http.Handler {
	c := opts.Checker
	if c == nil {
		c = detect.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := judgeRequest(c, r)
		if opts.Header != "" {
			v := "unknown"
			switch {
			case res.Intercepted == nil:
			case *res.Intercepted:
				v = "yes"
			default:
				v = "no"
			}
			if res.Product != "" {
				v += "; product=" + res.Product
			}
			w.Header().Set(opts.Header, v)
		}
		if opts.OnResult != nil {
			opts.OnResult(r, res)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), resultKey{}, res)))
	})
}

func judgeRequest(c *detect.Checker, r *http.Request) *detect.Result {
	conn, ok := r.Context().Value(connKey{}).(*Conn)
	if !ok {
		return &detect.Result{Browser: detect.ParseUA(r.UserAgent()), Reasons: []detect.Reason{{What: "the ClientHello was not captured (serve through detecthttp.NewListener with detecthttp.ConnContext)"}}}
	}
	return conn.verdict(c, r)
}

// ResultFrom returns the verdict Middleware put into the context, or nil.
func ResultFrom(ctx context.Context) *detect.Result {
	r, _ := ctx.Value(resultKey{}).(*detect.Result)
	return r
}

// VerdictHandler answers with the request's verdict as JSON.
func VerdictHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(ResultFrom(r.Context()))
	})
}
