// Package natstest runs a real NATS server with JetStream inside a test
// process (github.com/nats-io/nats-server/v2), on loopback, with its store
// in the test's temporary folder: the fleet's tests need no NATS installed
// and use no mock. Only tests import it.
package natstest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Server is an embedded NATS server that can be stopped and started again
// on the same port and store.
type Server struct {
	t    testing.TB
	dir  string
	port int
	s    *server.Server
	edit func(*server.Options)
}

// Start starts a server on 127.0.0.1 (a free port) with JetStream; it is
// shut down when the test ends.
func Start(t testing.TB) *Server { return StartWith(t, nil) }

// StartWith is Start with options edited (TLS, say) before the server is
// made.
func StartWith(t testing.TB, edit func(*server.Options)) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir(), port: -1, edit: edit}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	o := &server.Options{Host: "127.0.0.1", Port: s.port, JetStream: true, StoreDir: s.dir,
		NoSigs: true, NoLog: true, JetStreamMaxStore: 1 << 30, JetStreamMaxMemory: 64 << 20}
	if s.edit != nil {
		s.edit(o)
	}
	ns, err := server.NewServer(o)
	if err != nil {
		s.t.Fatalf("nats-server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		s.t.Fatalf("nats-server did not start within 10s")
	}
	if s.port < 0 {
		a, ok := ns.Addr().(*net.TCPAddr)
		if !ok {
			ns.Shutdown()
			s.t.Fatalf("nats-server: no TCP address (%v)", ns.Addr())
		}
		s.port = a.Port
	}
	s.s = ns
}

// URL is the server's client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

// Stop shuts the server down (its store stays for Restart).
func (s *Server) Stop() {
	if s.s != nil {
		s.s.Shutdown()
		s.s.WaitForShutdown()
		s.s = nil
	}
}

// Restart starts the server again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Running reports whether the server is up.
func (s *Server) Running() bool { return s.s != nil }
