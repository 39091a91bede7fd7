package guard_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/mitmguard/mitmguard/guard"
	"github.com/mitmguard/mitmguard/internal/lab"
)

// A program that fetches over HTTPS with a guarded client is refused when the
// chain runs through a blocked key, and can tell its user what to do.
func ExampleClient() {
	client := guard.Client(guard.Options{})
	resp, err := client.Get("https://www.example.com/")
	var ie *guard.InterceptionError
	if errors.As(err, &ie) {
		fmt.Println(ie.Advice())
		return
	}
	if err == nil {
		resp.Body.Close()
	}
}

// The lab plays the 2019 Kazakh middlebox on loopback. The device trusts the
// interception root, as users were told to make it; the guard refuses it
// anyway once its key is on the list.
func Example() {
	l, err := lab.Start(lab.Config{})
	if err != nil {
		panic(err)
	}
	defer l.Close()

	trusted := l.PublicPool()
	trusted.AddCert(l.NationalRoot)          // "install this certificate on every device"
	list, _ := lab.Blocklist(l.NationalRoot) // the embedded list, plus the national root
	tr := guard.Transport(nil, guard.Options{Blocklist: list})
	tr.TLSClientConfig.RootCAs = trusted
	tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", l.MiddleboxAddr) // the path through the middlebox
	}
	client := &http.Client{Transport: tr}

	_, err = client.Get("https://www.facebook.com/")
	var ie *guard.InterceptionError
	if errors.As(err, &ie) {
		fmt.Println("refused", ie.Host, "because of", ie.Entry.Name)
	}
	resp, err := client.Get("https://en.wikipedia.org/")
	if err == nil {
		fmt.Println("allowed en.wikipedia.org:", resp.Status)
		resp.Body.Close()
	}
	// Output:
	// refused www.facebook.com because of CN=mitmguard lab national root,C=KZ
	// allowed en.wikipedia.org: 200 OK
}
