package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mitmguard/mitmguard/detect"
	"github.com/mitmguard/mitmguard/detect/detecthttp"
	"github.com/mitmguard/mitmguard/detect/evaluate"
	"github.com/mitmguard/mitmguard/detect/site"
)

func newDetect() *cobra.Command {
	var file, ua, evalDir string
	var headers []string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "detect --clienthello FILE [--user-agent UA] [flags] | detect --evaluate DIR",
		Short: "Judge one captured ClientHello: was the connection intercepted?",
		Long: `detect reads the raw bytes of the first TLS record(s) of a connection (or the
same as hex text) and judges them against the browser the User-Agent names:
a ClientHello that no such browser sends, or one a known interceptor sends,
means something in the middle re-originated the connection. It prints the
verdict with its reasons, the JA4 and JA3 fingerprints and, when known, the
interceptor's name.

Exit status: 2 when judged intercepted, 1 on bad input, else 0 (also when the
evidence cannot tell).

--evaluate DIR judges every capture of a labelled folder (index.jsonl and raw
.bin hellos, as detect/testdata/captures) and prints caught/total for the
interceptors, flagged/total for the browsers and the unknowns, by family and
by product, then each miss with its reasons. It exits 1 when fewer than 90%
of the interceptors are caught, more than 2% of the browsers are flagged, any
browser of a version with reference data is flagged, or an unknown has no
reason.`,
		Example: `  mitmguard detect --clienthello hello.bin --user-agent "Mozilla/5.0 ... Chrome/133.0.0.0 Safari/537.36"
  mitmguard detect --clienthello hello.hex --json
  mitmguard detect --evaluate detect/testdata/captures
  mitmguard serve --listen 127.0.0.1:8443    # see verdicts for your own browser`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if evalDir != "" {
				if file != "" {
					return errors.New("detect: --evaluate and --clienthello exclude each other")
				}
				outs, err := evaluate.Run(evalDir, detect.Default())
				if err != nil {
					return fmt.Errorf("detect: %w", err)
				}
				r := evaluate.Summarize(outs)
				r.Print(cmd.OutOrStdout())
				if len(r.Failures()) > 0 {
					return &exitError{1}
				}
				return nil
			}
			if file == "" {
				return errors.New("detect: --clienthello FILE is required")
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if t := bytes.Join(bytes.Fields(data), nil); len(t) > 0 && isHex(t) {
				if data, err = hex.DecodeString(string(t)); err != nil {
					return fmt.Errorf("detect: %s: %w", file, err)
				}
			}
			ch, err := detect.Parse(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			h := http.Header{}
			for _, kv := range headers {
				k, v, ok := strings.Cut(kv, ":")
				if !ok {
					return fmt.Errorf("detect: --header %q: want \"Name: value\"", kv)
				}
				h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			r := detect.Default().Check(ch, ua, h)
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, r); err != nil {
					return err
				}
			} else {
				printDetect(out, r)
			}
			if r.Intercepted != nil && *r.Intercepted {
				return &exitError{exitIntercepted}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "clienthello", "", "`FILE` holding the raw TLS record(s) of the ClientHello, or the same as hex text")
	cmd.Flags().StringVar(&ua, "user-agent", "", "the User-Agent of the request made over the connection")
	cmd.Flags().StringArrayVar(&headers, "header", nil, "a request header, \"Name: value\" (repeatable); some proxies give themselves away by one")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the verdict as JSON")
	cmd.Flags().StringVar(&evalDir, "evaluate", "", "judge every labelled capture in `DIR` (index.jsonl + .bin) and print the detection rates")
	return cmd
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return len(b)%2 == 0
}

func printDetect(w io.Writer, r *detect.Result) {
	verdict := "UNKNOWN (the evidence cannot tell)"
	if r.Intercepted != nil {
		verdict = map[bool]string{true: "INTERCEPTED", false: "NOT INTERCEPTED"}[*r.Intercepted]
	}
	fmt.Fprintf(w, "%s  confidence %.2f\n", verdict, r.Confidence)
	if r.Product != "" {
		fmt.Fprintf(w, "  likely product: %s\n", r.Product)
	}
	if r.Browser.Family != "" {
		fmt.Fprintf(w, "  User-Agent claims: %s %d (%s TLS stack, %s)\n", r.Browser.Family, r.Browser.Major, r.Browser.Stack, r.Browser.OS)
	}
	for _, reason := range r.Reasons {
		fmt.Fprintf(w, "  - %s", reason.What)
		if reason.Expected != "" {
			fmt.Fprintf(w, "\n      expected %s", reason.Expected)
		}
		if reason.Seen != "" {
			fmt.Fprintf(w, "\n      seen     %s", reason.Seen)
		}
		fmt.Fprintln(w)
	}
	for _, wk := range r.Weakened {
		fmt.Fprintf(w, "  weaker: %s\n", wk)
	}
	fmt.Fprintf(w, "  JA4 %s\n  JA3 %s\n", r.JA4, r.JA3Hash)
}

func newServe() *cobra.Command {
	var listen, certFile, keyFile string
	var idle time.Duration
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR] [--cert FILE --key FILE]",
		Short: "Run a small HTTPS page that tells each visitor whether their connection looks intercepted",
		Long: `serve runs an HTTPS site that judges each visitor's TLS connection (its
ClientHello against the browser its User-Agent names) and shows the verdict
and why, with the advice browsers give, and the JSON at GET /mitmguard/verdict.
Without --cert and --key it makes a self-signed certificate at start.

Timeouts: the TLS handshake and the request headers must arrive within 10s,
the whole request within 30s, the answer is written within 30s, and an idle
keep-alive connection is closed after --idle-timeout (60s), so idle or slow
clients cannot hold connections for ever.`,
		Example: `  mitmguard serve                               # https://127.0.0.1:8443/
  mitmguard serve --listen :443 --cert fullchain.pem --key privkey.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cert tls.Certificate
			var err error
			switch {
			case certFile != "" && keyFile == "":
				return errors.New("serve: --cert needs --key (the certificate's private key PEM file)")
			case keyFile != "" && certFile == "":
				return errors.New("serve: --key needs --cert (the certificate chain PEM file)")
			}
			if idle <= 0 {
				return errors.New("serve: --idle-timeout must be positive")
			}
			if certFile != "" {
				if cert, err = tls.LoadX509KeyPair(certFile, keyFile); err != nil {
					return fmt.Errorf("serve: %w", err)
				}
			} else if cert, err = site.SelfSigned(listen); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
			srv := &http.Server{Handler: site.Handler(detecthttp.Options{Header: "Mitmguard-Intercepted"}), ConnContext: detecthttp.ConnContext,
				TLSConfig: cfg, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
				IdleTimeout: idle, MaxHeaderBytes: 64 << 10}
			fmt.Fprintf(cmd.OutOrStdout(), "listening on https://%s/ (verdict JSON at /mitmguard/verdict); Ctrl-C stops\n", ln.Addr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(sctx)
			}()
			if err := srv.Serve(tls.NewListener(detecthttp.NewListener(ln), cfg)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "`ADDR` to listen on")
	cmd.Flags().StringVar(&certFile, "cert", "", "certificate chain PEM `FILE` (default: a self-signed one)")
	cmd.Flags().StringVar(&keyFile, "key", "", "private key PEM `FILE`")
	cmd.Flags().DurationVar(&idle, "idle-timeout", time.Minute, "close a keep-alive connection idle for this `DURATION`")
	return cmd
}
