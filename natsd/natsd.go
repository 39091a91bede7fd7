// Package natsd runs the real NATS server (github.com/nats-io/nats-server)
// inside the mitmguard process, with JetStream persisting to a folder. It is
// what `mitmguard nats` serves and what the campaign tests start: someone can
// try the distributed mode on one machine without installing anything, and
// the tests exercise the same server production runs, not a fake.
//
// Production points --nats at a real NATS cluster; this package is a
// single-node server with no authentication, so it listens on loopback
// unless told otherwise.
package natsd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultListen is where the server listens when Config.Listen is empty:
// loopback, NATS's usual port.
const DefaultListen = "127.0.0.1:4222"

// Config says where the server listens and stores.
type Config struct {
	// Listen is HOST:PORT for clients (default DefaultListen); port 0 picks
	// a free port (Server.URL tells which).
	Listen string
	// StoreDir holds JetStream's streams and consumers; it survives a
	// restart, which is how a restarted server loses no job. Required.
	StoreDir string
	// Logger receives the server's notices and errors; nil keeps it quiet.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept clients
	// (default 10s).
	ReadyTimeout time.Duration
}

// Server is a running embedded NATS server.
type Server struct {
	ns *server.Server
}

// StartError says why the server did not start.
type StartError struct {
	Listen string
	Reason string
}

func (e *StartError) Error() string {
	return fmt.Sprintf("nats server on %s did not start: %s", e.Listen, e.Reason)
}

// Start runs a server and returns once it accepts clients.
func Start(cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if cfg.StoreDir == "" {
		return nil, &StartError{cfg.Listen, "a store folder is required (JetStream keeps the jobs there)"}
	}
	host, portText, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, &StartError{cfg.Listen, "listen address must be HOST:PORT"}
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, &StartError{cfg.Listen, "port must be 0-65535"}
	}
	if port == 0 {
		port = server.RANDOM_PORT // nats-server's 0 means its default, 4222
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
		return nil, &StartError{cfg.Listen, err.Error()}
	}
	ns, err := server.NewServer(&server.Options{
		ServerName: "mitmguard",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true, // the embedding command owns the process's signals
		// The HTTP monitoring port, clustering and leaf nodes stay off.
	})
	if err != nil {
		return nil, &StartError{cfg.Listen, err.Error()}
	}
	logger := &slogAdapter{log: cfg.Logger}
	ns.SetLoggerV2(logger, false, false, false)
	ns.Start()
	deadline := time.Now().Add(cfg.ReadyTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		if reason := logger.fatal(); reason != "" || time.Now().After(deadline) {
			ns.Shutdown()
			ns.WaitForShutdown()
			if reason == "" {
				reason = "not ready after " + cfg.ReadyTimeout.String()
			}
			return nil, &StartError{cfg.Listen, reason}
		}
	}
	if !ns.JetStreamEnabled() {
		reason := logger.fatal()
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, &StartError{cfg.Listen, "JetStream did not start: " + reason}
	}
	return &Server{ns: ns}, nil
}

// URL is the nats:// URL clients connect to.
func (s *Server) URL() string { return s.ns.ClientURL() }

// Addr is the address the server listens on (its port when 0 was asked).
func (s *Server) Addr() netip.AddrPort {
	if a, ok := s.ns.Addr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	return netip.AddrPort{}
}

// Close stops the server after flushing JetStream's state to the store
// folder, and waits until it has stopped.
func (s *Server) Close() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// slogAdapter forwards the server's log lines to a slog.Logger and keeps the
// first fatal one, which is why a server failed to start (a port in use, an
// unusable store folder).
type slogAdapter struct {
	log *slog.Logger

	mu         sync.Mutex
	fatalFirst string
}

func (a *slogAdapter) fatal() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fatalFirst
}

func (a *slogAdapter) emit(level slog.Level, format string, v []any) {
	if a.log != nil {
		a.log.Log(context.Background(), level, "nats: "+fmt.Sprintf(format, v...))
	}
}

func (a *slogAdapter) Noticef(format string, v ...any) { a.emit(slog.LevelInfo, format, v) }
func (a *slogAdapter) Warnf(format string, v ...any)   { a.emit(slog.LevelWarn, format, v) }
func (a *slogAdapter) Errorf(format string, v ...any)  { a.emit(slog.LevelError, format, v) }
func (a *slogAdapter) Debugf(format string, v ...any)  { a.emit(slog.LevelDebug, format, v) }
func (a *slogAdapter) Tracef(format string, v ...any)  {}

// Fatalf records the reason; the embedded server must never exit the
// process that hosts it.
func (a *slogAdapter) Fatalf(format string, v ...any) {
	a.mu.Lock()
	if a.fatalFirst == "" {
		a.fatalFirst = fmt.Sprintf(format, v...)
	}
	a.mu.Unlock()
	a.emit(slog.LevelError, format, v)
}
