// Command deepstack runs goroutines whose stacks are deeper than the goroutine
// profile keeps: 32 frames before Go 1.23, 128 since. The profile then holds
// only the innermost frames, so its outermost frame is not the function the
// goroutine was started with.
//
// At start it runs one long-lived worker (main.worker) that recurses to a
// depth and parks there; GET /depth?n=N makes it climb out and recurse to N
// frames instead, so its stack crosses the profile's limit between two
// readings while it stays the same goroutine. GET /leak?n=N starts a goroutine
// (main.leakDeep, created by main.serveLeak) that recurses to N frames through
// the same function and waits forever.
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
	"strconv"
	"syscall"
	"time"
)

var forever = make(chan int) // never sent on

// descend recurses n frames deep, says so on parked (if not nil), then waits
// on park; given a value v there, it unwinds the whole recursion and returns v+n.
//
//go:noinline
func descend(n int, park <-chan int, parked chan<- struct{}) int {
	if n <= 0 {
		if parked != nil {
			parked <- struct{}{}
		}
		return <-park
	}
	return descend(n-1, park, parked) + 1
}

// worker lives as long as the server; each value on depths moves its stack to
// that depth.
func worker(depth int, depths <-chan int, parked chan<- struct{}) {
	for {
		depth = descend(depth, depths, parked) - depth
	}
}

// leakDeep waits, n frames deep, for a value that never comes.
func leakDeep(n int) { descend(n, forever, nil) }

func serveLeak(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil {
		http.Error(w, "n: "+err.Error(), http.StatusBadRequest)
		return
	}
	go leakDeep(n)
	fmt.Fprint(w, "leaked")
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	depths, parked := make(chan int), make(chan struct{})
	go worker(3, depths, parked)
	<-parked
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	http.HandleFunc("/depth", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil {
			http.Error(w, "n: "+err.Error(), http.StatusBadRequest)
			return
		}
		// Answer once the worker is parked at its new depth, so the next
		// reading sees it there.
		depths <- n
		<-parked
		fmt.Fprintf(w, "depth %d", n)
	})
	http.HandleFunc("/leak", serveLeak)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "deepstack: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	<-ctx.Done()
	srv.Close()
}
