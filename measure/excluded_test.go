package measure

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// No network allowed opens the addresses no TLS handshake can be made
// with: multicast (IPv4, IPv6, IPv4-mapped), the limited broadcast and the
// unspecified addresses stay out even with nothing excluded, as
// --allow-special 0.0.0.0/0 and ::/0 leave it.
func TestReadHostsNeverMulticastOrBroadcast(t *testing.T) {
	hosts := "224.0.0.1\n239.255.255.250:1900\n224.0.0.0/30\nff02::1\n[ff05::fb]:5353\n::ffff:224.0.0.0/127\n" +
		"255.255.255.255\n255.255.255.254/31\n0.0.0.0\n::\n10.0.0.1\n[2001:db8::1]:8443\n"
	out := make(chan string, 64)
	skipped, err := ReadHosts(context.Background(), strings.NewReader(hosts), nil, out)
	if err != nil {
		t.Fatal(err)
	}
	close(out)
	var got []string
	for h := range out {
		got = append(got, h)
	}
	want := []string{"255.255.255.254:443", "10.0.0.1:443", "[2001:db8::1]:8443"}
	if !slices.Equal(got, want) || skipped != 14 {
		t.Fatalf("probed %q (%d skipped), want %q (14 skipped)", got, skipped, want)
	}
}
