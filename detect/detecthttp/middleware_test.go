package detecthttp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A request whose ClientHello was not captured has no verdict: the header
// says "unknown", never "no" (which would vouch for the connection).
func TestHeaderUnknownWithoutCapture(t *testing.T) {
	h := Middleware(http.NotFoundHandler(), Options{Header: "Mitmguard-Intercepted"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if got := w.Header().Get("Mitmguard-Intercepted"); got != "unknown" {
		t.Errorf("header %q, want unknown", got)
	}
}
