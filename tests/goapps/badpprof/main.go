// badpprof answers pprof requests with broken bodies, the way a proxy, a
// crashing handler or a misrouted URL can. Its index page is fine, so the
// service looks ready; every profile is broken in the way -mode says.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	mode := flag.String("mode", "html", "html | empty | truncated | garbage | huge | slow")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "<html>pprof index</html>")
	})
	mux.HandleFunc("/debug/pprof/{profile}", func(w http.ResponseWriter, r *http.Request) {
		switch *mode {
		case "html":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintln(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		case "empty":
		case "truncated":
			// A text profile cut short: its records count fewer goroutines than its header.
			fmt.Fprint(w, "goroutine profile: total 5\n3 @ 0x1\n#\t0x1\tmain.f+0x1\t/src/main.go:1\n\n")
		case "garbage":
			fmt.Fprint(w, "goroutine profile: total 1\n\xff\xfe\x00garbage\n\n")
		case "huge":
			// Endless: the client must stop reading on its own.
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		case "slow":
			time.Sleep(time.Hour)
		}
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "listening on %s (mode %s)\n", ln.Addr(), *mode)
	log.Fatal(http.Serve(ln, mux))
}
