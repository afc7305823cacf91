// Command fileconf imitates a server that reads where to listen from its
// config file only, as containerd, Caddy or Prometheus do.
//
//	fileconf -config FILE
//
// FILE holds "key = value" lines: "listen" is host:port or unix:PATH (the API
// and pprof on one listener), "greeting" what GET /hello answers. Anything
// else in the file, braces included, is ignored.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

var forever = make(chan struct{}) // never closed: GET /leak blocks a goroutine on it

func leakOne(started chan<- struct{}) {
	close(started)
	<-forever
}

func readConfig(path string) (map[string]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	config := map[string]string{}
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		key, value, found := strings.Cut(scanner.Text(), "=")
		if found {
			config[strings.TrimSpace(key)] = strings.Trim(strings.TrimSpace(value), `"`)
		}
	}
	return config, scanner.Err()
}

func main() {
	path := flag.String("config", "", "config file")
	flag.Parse()
	config, err := readConfig(*path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fileconf: cannot read config: %v\n", err)
		os.Exit(2)
	}
	network, address := "tcp", config["listen"]
	if rest, found := strings.CutPrefix(address, "unix:"); found {
		network, address = "unix", rest
	}
	if address == "" {
		fmt.Fprintln(os.Stderr, "fileconf: config has no listen line")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, config["greeting"]) })
	mux.HandleFunc("GET /leak", func(w http.ResponseWriter, r *http.Request) {
		started := make(chan struct{})
		go leakOne(started)
		<-started
		fmt.Fprint(w, "leaked one goroutine")
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	listener, err := net.Listen(network, address)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fileconf: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", listener.Addr())
	server := &http.Server{Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		server.Shutdown(context.Background())
	}()
	if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "fileconf: %v\n", err)
		os.Exit(1)
	}
}
