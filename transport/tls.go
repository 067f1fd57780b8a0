package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// LoadTLSConfig returns a *tls.Config for [WithTLS] built from PEM files: this node's
// certificate chain and private key, and the CA certificate(s) that sign every member's
// certificate. The same certificate serves both roles, so it must allow server and client
// authentication (both extended key usages, or none).
//
// The config:
//
//   - requires TLS 1.3, and a client certificate verified against the CA;
//   - verifies a server's certificate chain against the CA but not a host name (members are
//     dialled by address and need not have certificates naming it); to bind certificates to
//     raft server IDs, in both directions, add [WithLocalID] and [WithPeerIDCheck];
//   - re-reads the three files when one of them changed (modification time, size or inode),
//     checking at most once per second at handshakes: an operator rotates certificates, or the
//     CA bundle, by replacing the files, without restarting. Connections already open keep
//     their certificates. A set of files that does not load (a key that does not match its
//     certificate while the files are being replaced) is ignored, and the previous one kept,
//     until it does.
//
// It fails if the files do not load now.
func LoadTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	r := &tlsFiles{paths: [3]string{certFile, keyFile, caFile}, interval: reloadInterval}
	if err := r.load(time.Now()); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  r.pool,
		RootCAs:    r.pool,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, _ := r.current()
			return cert, nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := r.current()
			return cert, nil
		},
		// crypto/tls's own server verification would also demand that the certificate name the
		// dialled host; VerifyConnection checks the chain against the current CA instead.
		InsecureSkipVerify: true,
		VerifyConnection:   r.verifyServer,
	}
	// A server verifies client certificates against ClientCAs, fixed in a config: each
	// handshake gets a config with the current CA pool.
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return r.serverConfig(cfg), nil
	}
	return cfg, nil
}

// tlsFiles holds the loaded contents of a certificate, key and CA file, reloaded on change.
type tlsFiles struct {
	paths    [3]string     // certificate, key, CA
	interval time.Duration // between looks at the files

	mu        sync.Mutex // guards the fields below
	stamps    [3]fileStamp
	checked   time.Time // last time the files were looked at
	cert      *tls.Certificate
	pool      *x509.CertPool
	serverCfg *tls.Config // derived for pool by serverConfig
	cfgPool   *x509.CertPool
}

// fileStamp identifies a version of a file cheaply: replacing a file (rename or rewrite)
// changes its modification time.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(fi os.FileInfo) fileStamp {
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}
}

// reloadInterval is how often, at most, the files are looked at again.
const reloadInterval = time.Second

// load reads the files; on success it replaces the current contents. r.mu must be held or r
// not yet shared.
func (r *tlsFiles) load(now time.Time) error {
	r.checked = now
	var stamps [3]fileStamp
	var data [3][]byte
	for i, p := range r.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("transport: tls: %w", err)
		}
		stamps[i] = stampOf(fi)
		if data[i], err = os.ReadFile(p); err != nil {
			return fmt.Errorf("transport: tls: %w", err)
		}
	}
	if stamps == r.stamps && r.cert != nil {
		return nil
	}
	cert, err := tls.X509KeyPair(data[0], data[1])
	if err != nil {
		return fmt.Errorf("transport: tls: %s, %s: %w", r.paths[0], r.paths[1], err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data[2]) {
		return fmt.Errorf("transport: tls: %s: no PEM certificate found", r.paths[2])
	}
	r.stamps, r.cert, r.pool = stamps, &cert, pool
	return nil
}

// current returns the certificate and CA pool, reloading them first if the files changed and
// the last look is over a second old.
func (r *tlsFiles) current() (*tls.Certificate, *x509.CertPool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= r.interval {
		r.checked = now
		if r.changed() {
			_ = r.load(now) // on failure keep the previous set; the next look retries
		}
	}
	return r.cert, r.pool
}

// changed reports whether any file's stamp differs from the loaded one; a file that cannot be
// looked at counts as changed (load then fails and the loaded set stays).
func (r *tlsFiles) changed() bool {
	for i, p := range r.paths {
		fi, err := os.Stat(p)
		if err != nil || stampOf(fi) != r.stamps[i] {
			return true
		}
	}
	return false
}

// serverConfig returns base with ClientCAs set to the current CA pool, made once per pool.
func (r *tlsFiles) serverConfig(base *tls.Config) *tls.Config {
	_, pool := r.current()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.serverCfg == nil || r.cfgPool != pool {
		c := base.Clone()
		c.ClientCAs = pool
		c.GetConfigForClient = nil
		r.serverCfg, r.cfgPool = c, pool
	}
	return r.serverCfg
}

// verifyServer verifies, on the client side, the server's chain against the current CA pool.
// On the server side crypto/tls has already verified the client's chain (VerifiedChains is
// set) and there is nothing left to do.
func (r *tlsFiles) verifyServer(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) > 0 {
		return nil
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("transport: tls: peer sent no certificate")
	}
	_, pool := r.current()
	intermediates := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// serverTLSConfig derives the config for accepted connections from the user's: TLS 1.3 at
// least, client certificates required and verified, for the configs GetConfigForClient returns
// too.
func serverTLSConfig(cfg *tls.Config) (*tls.Config, error) {
	c := cfg.Clone()
	if c.ClientCAs == nil && c.GetConfigForClient == nil {
		return nil, invalid("WithTLS", "no ClientCAs (nor GetConfigForClient) to verify peers' client certificates")
	}
	if len(c.Certificates) == 0 && c.GetCertificate == nil && c.GetConfigForClient == nil {
		return nil, invalid("WithTLS", "no certificate to serve (Certificates or GetCertificate)")
	}
	harden := func(c *tls.Config) {
		c.MinVersion = max(c.MinVersion, tls.VersionTLS13)
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	harden(c)
	if get := c.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			sc, err := get(hello)
			if sc == nil || err != nil {
				return sc, err
			}
			sc = sc.Clone()
			harden(sc)
			return sc, nil
		}
	}
	return c, nil
}

// clientTLSConfig derives the config for dialled connections from the user's.
func clientTLSConfig(cfg *tls.Config) (*tls.Config, error) {
	c := cfg.Clone()
	c.MinVersion = max(c.MinVersion, tls.VersionTLS13)
	c.GetConfigForClient = nil
	if c.InsecureSkipVerify && c.VerifyConnection == nil && c.VerifyPeerCertificate == nil {
		return nil, invalid("WithTLS", "InsecureSkipVerify without VerifyConnection would accept any server")
	}
	if len(c.Certificates) == 0 && c.GetClientCertificate == nil {
		return nil, invalid("WithTLS", "no client certificate (Certificates or GetClientCertificate)")
	}
	return c, nil
}

// clientTLSFor returns the client config for dialling addr: when crypto/tls verifies host
// names (no InsecureSkipVerify) and no ServerName was given, the dialled host.
func clientTLSFor(c *tls.Config, addr raft.ServerAddress) *tls.Config {
	if c.InsecureSkipVerify || c.ServerName != "" {
		return c
	}
	host, _, err := net.SplitHostPort(string(addr))
	if err != nil {
		host = string(addr)
	}
	c = c.Clone()
	c.ServerName = host
	return c
}
