package fleet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/trailwatch/trailwatch/internal/natstest"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, signed by it, as PEM files in dir.
func pki(t *testing.T, dir string) (ca *x509.CertPool, server tls.Certificate) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fleet test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) tls.Certificate {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".pem", "CERTIFICATE", der)
		write(name+"-key.pem", "EC PRIVATE KEY", kb)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	server = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	leaf("client", 3, x509.ExtKeyUsageClientAuth)
	ca = x509.NewCertPool()
	ca.AddCert(caCert)
	return ca, server
}

// A fleet behind TLS that requires client certificates: a node with the
// CA, its certificate and key joins it; one without a certificate cannot,
// and runs on its local tier, saying so once.
func TestTLSWithClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, cert := pki(t, dir)
	srv := natstest.StartWith(t, func(o *server.Options) {
		o.TLS, o.TLSVerify = true, true
		o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	})
	url := strings.Replace(srv.URL(), "nats://", "tls://", 1)
	c, err := Open(Options{URL: url, Node: "a", CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Ready() {
		t.Fatal("a node with the CA and a client certificate did not join the fleet")
	}
	if _, _, ok := claimTerm(c, "k", t0, time.Time{}, false); !ok {
		t.Fatal("a claim over TLS was not answered")
	}
	log := &logBuf{}
	d, err := Open(Options{URL: url, Node: "b", CA: filepath.Join(dir, "ca.pem"), ConnectWait: 500 * time.Millisecond, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Ready() || log.count("fleet unreachable") != 1 {
		t.Fatalf("a node without a client certificate: ready %v, log %q", d.Ready(), log.lines)
	}
}
