//go:build unix

package rediskv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/testenv"
	"github.com/faultline/faultline/targets"
)

// writeCerts writes a CA and a server certificate for 127.0.0.1 it signs
// (PEM) into dir, and returns the paths of the CA's certificate, the
// server's certificate and the server's key.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "faultline test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}

// TestTLS: a server that speaks only TLS. A client with tls_ca works (ops,
// Ping, Status); one without TLS, or that does not trust the CA, fails
// every op, not sent.
func TestTLS(t *testing.T) {
	redisBinary(t)
	ca, cert, key := writeCerts(t, t.TempDir())
	port := testenv.FreePorts(t, 1)[0]
	opts := map[string]string{"tls_ca": ca}
	s := startServer(t, "n1", port, opts, "--port", "0", "--tls-port", fmt.Sprint(port),
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no")
	nodes := map[string]string{"n1": s.addr}

	c := adapterClient(t, targets.ClientConfig{Nodes: nodes, Home: "n1", Options: opts})
	want.OK(t, "put over TLS", do(c, "put", "k", `"tls"`), "n1")
	want.Value(t, "get over TLS", do(c, "get", "k", ""), "n1", `"tls"`)
	want.OK(t, "cas over TLS", do(c, "cas", "k", `{"from": "tls", "to": 1}`), "n1")
	if st, err := s.status(); err != nil || st.Role != "primary" {
		t.Errorf("Status over TLS: %+v %v", st, err)
	}

	for name, o := range map[string]map[string]string{
		"plain TCP":         nil,
		"an unknown CA":     {"tls": "true"},
		"another host name": {"tls_ca": ca, "tls_server_name": "redis.example"},
	} {
		bad := adapterClient(t, targets.ClientConfig{Nodes: nodes, Home: "n1", Timeout: 500 * time.Millisecond, Options: o})
		for _, op := range []struct{ f, v string }{{"put", `2`}, {"cas", `{"from": 1, "to": 2}`}} {
			out := do(bad, op.f, "k", op.v)
			if out.Type != history.Fail || !strings.Contains(out.Error, "not sent") {
				t.Errorf("%s, %s to a TLS server: %+v, want fail, not sent", name, op.f, out)
			}
		}
		t.Logf("%s: %s", name, do(bad, "put", "k", `2`).Error)
	}
	want.Value(t, "the refused writes changed nothing", do(c, "get", "k", ""), "n1", `1`)
}
