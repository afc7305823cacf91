// Command warming answers pprof at once and then goes on starting up, as
// real servers do (a database opening, a pool filling): for -for it starts a
// worker every -every, which opens /dev/null and holds it, and its goroutine,
// until shutdown. GET /ping answers "pong". With -ready-path, that path
// answers 503 during the warm-up and 200 after it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// warmWorker is one member of the pool the warm-up fills: a goroutine and an fd, both kept until shutdown.
func warmWorker(ctx context.Context) {
	f, err := os.Open(os.DevNull)
	if err == nil {
		defer f.Close()
	}
	<-ctx.Done()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	warmFor := flag.Duration("for", 1500*time.Millisecond, "how long to go on starting workers after listening")
	every := flag.Duration("every", 100*time.Millisecond, "how often to start one during the warm-up")
	readyPath := flag.String("ready-path", "", "a path that answers 503 during the warm-up and 200 after it")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var warm atomic.Bool
	http.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "pong")
	})
	if *readyPath != "" {
		http.HandleFunc("GET "+*readyPath, func(w http.ResponseWriter, r *http.Request) {
			if !warm.Load() {
				http.Error(w, "warming up", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "ready")
		})
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warming: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	go func() {
		for end := time.Now().Add(*warmFor); time.Now().Before(end); time.Sleep(*every) {
			go warmWorker(ctx)
		}
		warm.Store(true)
	}()
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
}
