package natsd

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRestartKeepsStream(t *testing.T) {
	dir := t.TempDir()
	s, err := Start(Config{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if !addr.Addr().IsLoopback() || addr.Port() == 0 {
		t.Fatalf("listening on %v, want loopback with a port", addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	publish := func(url string) {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "t.x", []byte("kept")); err != nil {
			t.Fatal(err)
		}
	}
	publish(s.URL())
	s.Close()

	s, err = Start(Config{Listen: addr.String(), StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("stream lost in the restart: %v", err)
	}
	m, err := st.GetLastMsgForSubject(ctx, "t.x")
	if err != nil || string(m.Data) != "kept" {
		t.Fatalf("message after restart: %v, %v", m, err)
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	_, err = Start(Config{Listen: l.Addr().String(), StoreDir: t.TempDir()})
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("err = %v, want a StartError naming the port in use", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to report a port in use", d)
	}
}

func TestBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Listen: "127.0.0.1:0"},
		{Listen: "127.0.0.1", StoreDir: t.TempDir()},
		{Listen: "127.0.0.1:99999", StoreDir: t.TempDir()},
	} {
		if _, err := Start(c); err == nil {
			t.Errorf("Start(%+v) succeeded", c)
		}
	}
}
