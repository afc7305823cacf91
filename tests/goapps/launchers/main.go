// Command launchers starts its goroutines through sync.WaitGroup.Go (Go
// 1.25+), so every one of them starts in sync.(*WaitGroup).Go.func1 and is
// created by sync.(*WaitGroup).Go, whatever it runs.
//
// At start it runs one poller; GET /stop-poller ends it. GET /leak starts a
// subscriber that waits forever. A test that does both ends one goroutine and
// leaks another of a different kind: only an identity that looks through the
// launcher tells them apart.
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
	"sync"
	"syscall"
	"time"
)

var (
	workers sync.WaitGroup
	forever = make(chan struct{})
)

// poll runs until stop is closed.
func poll(stop <-chan struct{}) {
	ticker := time.NewTicker(time.Hour)
	defer ticker.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
	}
}

// subscribe waits for an event that never comes.
func subscribe() { <-forever }

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	stop := make(chan struct{})
	var once sync.Once
	workers.Go(func() { poll(stop) })
	http.HandleFunc("GET /stop-poller", func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(stop) })
		fmt.Fprint(w, "stopped")
	})
	http.HandleFunc("GET /leak", func(w http.ResponseWriter, r *http.Request) {
		workers.Go(subscribe)
		fmt.Fprint(w, "subscribed")
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "launchers: %v\n", err)
		os.Exit(1)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	<-ctx.Done()
	srv.Close()
}
