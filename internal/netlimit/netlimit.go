// Package netlimit holds the bounds every listener of trailwatch keeps:
// timeouts and a cap on open connections.
package netlimit

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Timeouts cut senders that are slow on purpose or by accident, so that
// they do not hold connections (and memory) for ever.
type Timeouts struct {
	ReadHeader time.Duration // a request's headers must arrive within this
	Read       time.Duration // the whole request, body included
	Write      time.Duration // from the end of the headers to the answer sent (evaluation included)
	Idle       time.Duration // a kept-alive connection waiting for its next request
}

// DefaultTimeouts are serve's.
var DefaultTimeouts = Timeouts{ReadHeader: 10 * time.Second, Read: time.Minute, Write: 2 * time.Minute, Idle: 2 * time.Minute}

// DefaultMaxConnections is how many connections each listener holds at
// once unless told otherwise.
const DefaultMaxConnections = 1024

// NewHTTPServer is the http.Server serve runs h in: every timeout set, and
// headers of at most 64 KB.
func NewHTTPServer(h http.Handler, t Timeouts) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read, WriteTimeout: t.Write, IdleTimeout: t.Idle, MaxHeaderBytes: 64 << 10}
}

// LimitListener holds at most n connections of l open at once: past them,
// Accept waits for one to close (the kernel queues the newcomers), so that
// a flood of connections cannot exhaust descriptors or goroutines.
func LimitListener(l net.Listener, n int) net.Listener {
	return &limitListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{} // closed by Close: an Accept waiting for a slot gives up
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
