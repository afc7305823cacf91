// hostile is a service that misbehaves on purpose, one flag per behaviour, so
// that each of pytest-goleak's bounds (time, memory, output, processes) can be
// shown to hold. Real pprof is served for every path no flag takes over.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// pathFlags collects repeated PATH=VALUE flags.
type pathFlags map[string]string

func (p pathFlags) String() string { return fmt.Sprint(map[string]string(p)) }
func (p pathFlags) Set(v string) error {
	path, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want PATH=VALUE, got %q", v)
	}
	p[path] = value
	return nil
}

var kept []*os.File // files opened on purpose and never closed

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	serve := pathFlags{}
	flag.Var(serve, "serve", "PATH=FILE: answer PATH with FILE's bytes (repeatable)")
	status := pathFlags{}
	flag.Var(status, "status", "PATH=CODE: answer PATH with this status (repeatable)")
	drip := flag.String("drip", "", "PATH answered 200, then one byte every -drip-every, forever")
	dripEvery := flag.Duration("drip-every", 100*time.Millisecond, "pause between dripped bytes")
	silent := flag.String("silent", "", "PATH whose request is read and never answered, not even headers")
	endless := flag.String("endless", "", "PATH answered with an endless fast body")
	short := flag.String("short", "", "PATH whose answer promises more bytes (Content-Length) than it sends")
	idle := flag.Duration("idle", 0, "close a kept-alive connection idle this long (0: never)")
	closing := flag.String("close", "", "PATH answered as usual, then its connection closed (Connection: close)")
	tlsCert := flag.String("tls-cert", "", "serve HTTPS with a self-signed certificate for 127.0.0.1, written to this PEM file")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/daemon", func(w http.ResponseWriter, r *http.Request) {
		// A daemon: it leaves the service's process group and session, then its parent exits.
		run(w, "setsid sleep 600 </dev/null >/dev/null 2>&1 &")
	})
	mux.HandleFunc("/orphan", func(w http.ResponseWriter, r *http.Request) {
		// A grandchild whose parent exits at once: reparented away from the service.
		run(w, "sleep 600 </dev/null >/dev/null 2>&1 &")
	})
	mux.HandleFunc("/zombies", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for i := 0; i < n; i++ {
			cmd := exec.Command("true")
			if err := cmd.Start(); err != nil { // never waited for: a zombie
				http.Error(w, err.Error(), 500)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/open", func(w http.ResponseWriter, r *http.Request) {
		// A file whose name the service chose: GET /open?name=... keeps it open.
		f, err := os.Create(filepath.Join(os.TempDir(), r.URL.Query().Get("name")))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		kept = append(kept, f)
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/deep", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		dir := os.TempDir()
		for i := 0; i < n; i++ {
			dir = filepath.Join(dir, "d")
			if err := os.Mkdir(dir, 0o755); err != nil {
				// The path grows past PATH_MAX: go on relative to the deepest directory made.
				if err := os.Chdir(filepath.Dir(dir)); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				dir = "d"
				if err := os.Mkdir(dir, 0o755); err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
			}
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/swap-tmpdir", func(w http.ResponseWriter, r *http.Request) {
		// The service's TMPDIR becomes a symlink to /.
		tmp := os.TempDir()
		if err := os.Rename(tmp, tmp+".moved"); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := os.Symlink("/", tmp); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		switch {
		case status[path] != "":
			code, _ := strconv.Atoi(status[path])
			http.Error(w, "refused on purpose", code)
		case serve[path] != "":
			body, err := os.ReadFile(serve[path])
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			w.Write(body)
		case path == *drip:
			w.WriteHeader(200)
			for {
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				time.Sleep(*dripEvery)
			}
		case path == *silent:
			<-r.Context().Done()
		case path == *endless:
			chunk := []byte(strings.Repeat("goroutine 1 [running]:\n", 1<<15))
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case path == *closing:
			w.Header().Set("Connection", "close")
			mux.ServeHTTP(w, r)
		case path == *short:
			w.Header().Set("Content-Length", "100000")
			w.WriteHeader(200)
			w.Write([]byte("\x1f\x8b"))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // ends the connection with the body short
		default:
			mux.ServeHTTP(w, r)
		}
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	server := &http.Server{Handler: handler, IdleTimeout: *idle}
	if *tlsCert != "" {
		cert, err := selfSigned(*tlsCert)
		if err != nil {
			log.Fatal(err)
		}
		server.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		log.Fatal(server.ServeTLS(ln, "", ""))
	}
	log.Fatal(server.Serve(ln))
}

// selfSigned makes a certificate for 127.0.0.1 and writes it (PEM) where a client can trust it.
func selfSigned(path string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, &template, &template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func run(w http.ResponseWriter, script string) {
	cmd := exec.Command("sh", "-c", script)
	if err := cmd.Run(); err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	fmt.Fprintln(w, "ok")
}
