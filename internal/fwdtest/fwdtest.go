// Package fwdtest is a client of the forward protocol's handshake (HELO,
// PING, PONG) with a shared key, for the tests of trailwatch's forward
// input in server and in serve. Only tests import it.
package fwdtest

import (
	"crypto/sha512"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// PingPong runs the handshake against addr as a client named host with key
// (dialling for up to 5 s, while a server starts) and returns the PONG:
// whether it accepted the client, and its reason, host name and digest.
func PingPong(t testing.TB, addr, host, key string) (bool, []string) {
	t.Helper()
	var c net.Conn
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err = net.Dial("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := msgp.NewReader(c)
	if n, err := r.ReadArrayHeader(); err != nil || n != 2 {
		t.Fatalf("no HELO: %d %v", n, err)
	}
	if s, _ := r.ReadString(); s != "HELO" {
		t.Fatalf("got %q, want HELO", s)
	}
	opts := map[string]any{}
	if err := r.ReadMapStrIntf(opts); err != nil {
		t.Fatal(err)
	}
	nonce, _ := opts["nonce"].([]byte)
	const salt = "salt"
	h := sha512.New()
	h.Write([]byte(salt))
	h.Write([]byte(host))
	h.Write(nonce)
	h.Write([]byte(key))
	ping := msgp.AppendArrayHeader(nil, 6)
	ping = msgp.AppendString(ping, "PING")
	ping = msgp.AppendString(ping, host)
	ping = msgp.AppendString(ping, salt)
	ping = msgp.AppendString(ping, hex.EncodeToString(h.Sum(nil)))
	ping = msgp.AppendString(ping, "")
	ping = msgp.AppendString(ping, "")
	if _, err := c.Write(ping); err != nil {
		t.Fatal(err)
	}
	if n, err := r.ReadArrayHeader(); err != nil || n != 5 {
		t.Fatalf("no PONG: %d %v", n, err)
	}
	r.ReadString()
	ok, err := r.ReadBool()
	if err != nil {
		t.Fatal(err)
	}
	var rest []string
	for range 3 {
		s, _ := r.ReadString()
		rest = append(rest, s)
	}
	return ok, rest
}
