package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/instance"
	"github.com/trailwatch/trailwatch/internal/netlimit"
	"github.com/trailwatch/trailwatch/server"
)

// serveKeys are serve's own settings, beside the plugin's properties.
var serveKeys = []conf.Property{
	{Name: "listen_http", Default: "", Help: "HTTP listener (POST / ingest, /healthz, /metrics), e.g. 127.0.0.1:8080; a bare port binds to 127.0.0.1"},
	{Name: "listen_forward", Default: "", Help: "forward protocol listener, e.g. 127.0.0.1:24224; a bare port binds to 127.0.0.1"},
	{Name: "http_token", Default: "", Help: "bearer token required on POST / and GET /metrics (on the command line it shows in ps: prefer http_token_file or $TRAILWATCH_HTTP_TOKEN)"},
	{Name: "http_token_file", Default: "", Help: "file holding http_token"},
	{Name: "forward_shared_key", Default: "", Help: "shared key the forward handshake requires (prefer forward_shared_key_file or $TRAILWATCH_FORWARD_SHARED_KEY)"},
	{Name: "forward_shared_key_file", Default: "", Help: "file holding forward_shared_key"},
	{Name: "tls_cert", Default: "", Help: "TLS certificate (PEM) for both listeners"},
	{Name: "tls_key", Default: "", Help: "TLS private key (PEM)"},
	{Name: "max_body", Default: strconv.Itoa(server.DefaultMaxBody), Help: "largest request or forward message, in bytes, after decompression"},
	{Name: "max_records", Default: strconv.Itoa(server.DefaultMaxRecords), Help: "most records in one request or forward message"},
	{Name: "max_buffered", Default: "", Help: "most bytes of requests and forward messages held in memory at once, across connections (default twice max_body, the least allowed)"},
	{Name: "max_connections", Default: strconv.Itoa(netlimit.DefaultMaxConnections), Help: "most connections each listener holds open at once; past them new ones wait"},
}

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	config := fs.String("config", "", "TOML file with the same keys as the plugin's properties (and serve's own)")
	vals := map[string]*string{}
	for _, p := range append(append([]conf.Property(nil), conf.Properties...), serveKeys...) {
		vals[p.Name] = fs.String(strings.ReplaceAll(p.Name, "_", "-"), "", p.Help+defaultNote(p.Default))
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: trailwatch serve [--config FILE] [--rules PATH] [--listen-http ADDR] [--listen-forward ADDR] ...")
		fmt.Fprintln(stderr, "Runs the engine as a sidecar: CloudTrail in over HTTP or the forward protocol, alerts out to the sinks.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "trailwatch serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	fileVals := map[string]string{}
	if *config != "" {
		var err error
		if fileVals, err = readServeConfig(*config, vals); err != nil {
			fmt.Fprintf(stderr, "trailwatch serve: %v\n", err)
			return 2
		}
	}
	get := func(k string) string {
		if v := vals[k]; v != nil && *v != "" {
			return *v
		}
		return fileVals[k]
	}
	secrets := map[string]string{}
	for _, key := range []string{"http_token", "forward_shared_key"} {
		v, err := secret(key, vals, fileVals, os.Getenv, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "trailwatch serve: %v\n", err)
			return 2
		}
		secrets[key] = v
	}
	listenHTTP, listenFwd := loopback(get("listen_http")), loopback(get("listen_forward"))
	if listenHTTP == "" && listenFwd == "" {
		listenHTTP = "127.0.0.1:8080"
	}
	positive := func(key string, def int64) (int64, bool) {
		v := get(key)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			fmt.Fprintf(stderr, "trailwatch serve: %s = %q: expected a positive number\n", key, v)
			return 0, false
		}
		return n, true
	}
	maxBody, ok1 := positive("max_body", server.DefaultMaxBody)
	maxRecords, ok2 := positive("max_records", server.DefaultMaxRecords)
	maxBuffered, ok3 := positive("max_buffered", server.DefaultMaxHeld(maxBody))
	maxConns, ok4 := positive("max_connections", netlimit.DefaultMaxConnections)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 2
	}
	if maxBuffered < server.MinMaxHeld(maxBody) {
		fmt.Fprintf(stderr, "trailwatch serve: max_buffered = %d: expected at least %d (twice max_body, for a compressed body and what it inflates to)\n", maxBuffered, server.MinMaxHeld(maxBody))
		return 2
	}
	limits := server.NewLimits(maxBuffered, server.DefaultWorkers)
	var tlsConf *tls.Config
	if cert, key := get("tls_cert"), get("tls_key"); cert != "" || key != "" {
		pair, err := loadKeyPair(cert, key)
		if err != nil {
			fmt.Fprintf(stderr, "trailwatch serve: tls_cert/tls_key: %v\n", err)
			return 2
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	in, err := instance.Open("serve", get, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "trailwatch serve: %v\n", err)
		return 2
	}
	srv, err := startListeners(in, listenHTTP, listenFwd, tlsConf, int(maxConns),
		server.HTTPOptions{Token: secrets["http_token"], MaxBody: maxBody, MaxRecords: int(maxRecords), Limits: limits},
		server.ForwardOptions{SharedKey: secrets["forward_shared_key"], MaxMessage: maxBody, MaxRecords: int(maxRecords), Limits: limits})
	if err != nil {
		in.Close()
		fmt.Fprintf(stderr, "trailwatch serve: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			if err := in.Reload(); err != nil {
				in.Log.Errorf("SIGHUP: %v", err)
			}
			continue
		}
		in.Log.Infof("%v: no new records; finishing what is in flight", sig)
		srv.shutdown(10 * time.Second)
		if err := in.Close(); err != nil {
			in.Log.Errorf("closing: %v", err)
			return 1
		}
		return 0
	}
	return 0
}

// secret reads a secret setting (http_token, forward_shared_key) from the
// one place it is given: the command line (--http-token, which other users
// see in ps: a warning says so), the config file, a file named by
// <key>_file (flag or config; its content, line break trimmed), or the
// environment ($TRAILWATCH_HTTP_TOKEN). Two places at once are an error.
func secret(key string, flags map[string]*string, config map[string]string, getenv func(string) string, stderr io.Writer) (string, error) {
	env := "TRAILWATCH_" + strings.ToUpper(key)
	var from []string
	var value string
	take := func(where, v string) {
		if v != "" {
			from, value = append(from, where), v
		}
	}
	flag := "--" + strings.ReplaceAll(key, "_", "-")
	take(flag, *flags[key])
	take(key+" in the config file", config[key])
	file := *flags[key+"_file"]
	if file == "" {
		file = config[key+"_file"]
	}
	if file != "" {
		b, err := conf.ReadFile(file, 64<<10, "a secret's file", true)
		if err != nil {
			return "", fmt.Errorf("%s_file: %v", key, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("%s_file %s: the file is empty", key, file)
		}
		take(key+"_file", v)
	}
	take("$"+env, getenv(env))
	if len(from) > 1 {
		return "", fmt.Errorf("%s is given by %s: give it in one place", key, strings.Join(from, " and "))
	}
	if len(from) == 1 && from[0] == flag {
		fmt.Fprintf(stderr, "trailwatch serve: warning: %s on the command line shows in ps to other users; prefer %s-file or $%s\n", flag, flag, env)
	}
	return value, nil
}

func defaultNote(d string) string {
	if d == "" {
		return ""
	}
	return " (default " + d + ")"
}

// loopback makes a bare port bind to 127.0.0.1.
func loopback(addr string) string {
	if addr == "" || strings.Contains(addr, ":") || strings.HasPrefix(addr, "/") {
		return addr
	}
	return "127.0.0.1:" + addr
}

// readServeConfig reads a flat TOML file of settings; unknown keys are an
// error naming the key and the file.
func readServeConfig(path string, known map[string]*string) (map[string]string, error) {
	data, err := conf.ReadFile(path, 64<<20, "a config file", true) // as a rule file
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw map[string]any
	md, err := conf.DecodeTOML(path, data, &raw)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, k := range md.Keys() {
		name := k.String()
		if _, ok := known[name]; !ok {
			return nil, fmt.Errorf("%s: unknown key %q (keys are the plugin's properties: rules, db, alert_file, listen_http, ...)", path, name)
		}
		switch v := raw[name].(type) {
		case string:
			out[name] = v
		case []any:
			parts := make([]string, len(v))
			for i, x := range v {
				parts[i] = fmt.Sprint(x)
			}
			out[name] = strings.Join(parts, ",")
		case bool:
			out[name] = map[bool]string{true: "on", false: "off"}[v]
		default:
			out[name] = fmt.Sprint(v)
		}
	}
	return out, nil
}

type listeners struct {
	http *http.Server
	fwd  *server.Forward
	lns  []net.Listener
}

func startListeners(in *instance.Instance, httpAddr, fwdAddr string, tlsConf *tls.Config, maxConns int, ho server.HTTPOptions, fo server.ForwardOptions) (*listeners, error) {
	s := &listeners{}
	listen := func(addr string) (net.Listener, error) {
		network := "tcp"
		if strings.HasPrefix(addr, "/") {
			network = "unix"
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			return nil, err
		}
		l = netlimit.LimitListener(l, maxConns)
		if tlsConf != nil {
			l = tls.NewListener(l, tlsConf)
		}
		s.lns = append(s.lns, l)
		return l, nil
	}
	if httpAddr != "" {
		l, err := listen(httpAddr)
		if err != nil {
			return nil, fmt.Errorf("listen_http %s: %w", httpAddr, err)
		}
		s.http = netlimit.NewHTTPServer(server.NewHandler(in, ho), netlimit.DefaultTimeouts)
		go s.http.Serve(l)
		in.Log.Infof("HTTP on %s (POST / for records, /healthz, /metrics)%s", l.Addr(), tlsNote(tlsConf))
	}
	if fwdAddr != "" {
		l, err := listen(fwdAddr)
		if err != nil {
			s.shutdown(time.Second)
			return nil, fmt.Errorf("listen_forward %s: %w", fwdAddr, err)
		}
		s.fwd = server.NewForward(in, fo)
		go s.fwd.Serve(l)
		in.Log.Infof("forward protocol on %s%s", l.Addr(), tlsNote(tlsConf))
	}
	return s, nil
}

func tlsNote(c *tls.Config) string {
	if c != nil {
		return " with TLS"
	}
	return ""
}

func (s *listeners) shutdown(timeout time.Duration) {
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		s.http.Shutdown(ctx)
		cancel()
	}
	if s.fwd != nil {
		for _, l := range s.lns {
			l.Close()
		}
		s.fwd.Shutdown(timeout)
	}
}

// maxTLSFile bounds a certificate or key file (a chain of a few
// certificates is a few kilobytes).
const maxTLSFile = 1 << 20

// loadKeyPair is tls.LoadX509KeyPair with each file read to a bound, and
// regular files or pipes only: /dev/zero filled memory, a FIFO with no
// writer hung the start.
func loadKeyPair(certPath, keyPath string) (tls.Certificate, error) {
	cert, err := conf.ReadFile(certPath, maxTLSFile, "a TLS certificate file", true)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", certPath, err)
	}
	key, err := conf.ReadFile(keyPath, maxTLSFile, "a TLS key file", true)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("%s: %w", keyPath, err)
	}
	return tls.X509KeyPair(cert, key)
}
