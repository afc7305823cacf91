// Command debugport imitates a third-party server that serves its API on one
// listener and pprof only on a separate debug listener.
//
//	debugport -listen 127.0.0.1:8080 -debug-listen 127.0.0.1:6060 -data-dir DIR
//
// -data-dir is required and must be a writable directory: the server writes
// DIR/server.pid there. GET /hello answers $DEBUGPORT_GREETING.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// leaked holds the goroutines that GET /leak leaves blocked.
var leaked = struct {
	sync.Mutex
	forever chan struct{} // never closed
	count   int
}{forever: make(chan struct{})}

// leakOne blocks until a channel that is never closed is closed.
func leakOne(forever <-chan struct{}, started chan<- struct{}) {
	close(started)
	<-forever
}

func apiMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv("DEBUGPORT_GREETING"))
	})
	mux.HandleFunc("GET /leak", func(w http.ResponseWriter, r *http.Request) {
		started := make(chan struct{})
		go leakOne(leaked.forever, started)
		<-started
		leaked.Lock()
		leaked.count++
		n := leaked.count
		leaked.Unlock()
		fmt.Fprintf(w, "leaked %d goroutines\n", n)
	})
	return mux
}

// debugMux serves pprof, registered explicitly (no net/http/pprof side
// effects are relied on: the API mux does not serve /debug/pprof/).
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "debugport: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "API listen address")
	debugListen := flag.String("debug-listen", "127.0.0.1:6060", "debug (pprof) listen address")
	dataDir := flag.String("data-dir", "", "writable directory for server.pid (required)")
	flag.Parse()

	if *dataDir == "" {
		fail("-data-dir is required")
	}
	if st, err := os.Stat(*dataDir); err != nil {
		fail("-data-dir %s: %v", *dataDir, err)
	} else if !st.IsDir() {
		fail("-data-dir %s: not a directory", *dataDir)
	}
	apiLn, err := net.Listen("tcp", *listen)
	if err != nil {
		fail("-listen: %v", err)
	}
	debugLn, err := net.Listen("tcp", *debugListen)
	if err != nil {
		fail("-debug-listen: %v", err)
	}
	pidFile := filepath.Join(*dataDir, "server.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fail("-data-dir %s is not writable: %v", *dataDir, err)
	}
	defer os.Remove(pidFile)

	api := &http.Server{Handler: apiMux(), ReadHeaderTimeout: 10 * time.Second}
	debug := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(apiLn) }()
	go func() { errc <- debug.Serve(debugLn) }()
	fmt.Fprintf(os.Stderr, "listening on %s (debug on %s)\n", apiLn.Addr(), debugLn.Addr())

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(os.Stderr, "debugport: %v\n", err)
			os.Remove(pidFile)
			os.Exit(1)
		}
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	api.Shutdown(shutdownCtx)
	debug.Shutdown(shutdownCtx)
}
