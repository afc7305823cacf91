// Command slowstart waits -delay before it starts listening on -addr, like
// a service with a slow initialisation. It serves GET /healthz and
// /debug/pprof/.
//
// With -warmup, it keeps initialising after it listens, as real servers do
// (a pool filling, a first scrape): for that long it starts one worker
// goroutine every 50ms, which then live for good, and GET /ready answers 503;
// after it, 200.
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

// racyCount increments a counter from two goroutines without a lock: a data
// race for builds with -race to report.
func racyCount() int {
	count := 0
	done := make(chan bool)
	go func() { count++; done <- true }()
	count++
	<-done
	return count
}

// worker is one member of the pool the warm-up fills; it lives until shutdown.
func worker(ctx context.Context) {
	<-ctx.Done()
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	delay := flag.Duration("delay", time.Second, "how long to wait before listening")
	warmup := flag.Duration("warmup", 0, "how long to keep initialising after listening")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Fprintf(os.Stderr, "starting: listening in %s\n", *delay)
	select {
	case <-time.After(*delay):
	case <-ctx.Done():
		return
	}

	http.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "ok")
	})
	http.HandleFunc("GET /race", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, racyCount())
	})
	var ready atomic.Bool
	http.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ready")
	})
	go func() {
		for end := time.Now().Add(*warmup); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			go worker(ctx)
		}
		ready.Store(true)
	}()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slowstart: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
}
