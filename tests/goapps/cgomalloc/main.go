// Command cgomalloc is an HTTP server whose image thumbnailer keeps C memory:
// GET /leaky/thumbnail mallocs a C buffer of ?mb= MiB (default 16), writes
// every page and keeps it in a C-side cache nobody frees; GET /fixed/thumbnail
// does the same work and frees the buffer. The Go heap sees neither. It needs
// cgo (a C compiler) to build. Serves /debug/pprof/ on -addr.
package main

/*
#include <stdlib.h>
#include <string.h>

static void *kept[4096];
static int nkept;

// thumbnail fills a buffer of size bytes, as a C decoder would its scratch space.
static void *thumbnail(size_t size) {
	char *buf = malloc(size);
	if (buf != NULL) {
		memset(buf, 0x5a, size);
	}
	return buf;
}

static int thumbnail_leaky(size_t size) {
	void *buf = thumbnail(size);
	if (buf == NULL || nkept == 4096) {
		free(buf);
		return -1;
	}
	kept[nkept++] = buf;  // cached "for later", never freed
	return 0;
}

static int thumbnail_fixed(size_t size) {
	void *buf = thumbnail(size);
	if (buf == NULL) {
		return -1;
	}
	free(buf);
	return 0;
}
*/
import "C"

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func handler(work func(C.size_t) C.int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mb := 16
		if v := r.URL.Query().Get("mb"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 256 {
				http.Error(w, "mb must be 1..256", http.StatusBadRequest)
				return
			}
			mb = n
		}
		if work(C.size_t(mb)<<20) != 0 {
			http.Error(w, "malloc failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "thumbnail done in %d MiB of C memory\n", mb)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	http.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	http.HandleFunc("GET /leaky/thumbnail", handler(func(n C.size_t) C.int { return C.thumbnail_leaky(n) }))
	http.HandleFunc("GET /fixed/thumbnail", handler(func(n C.size_t) C.int { return C.thumbnail_fixed(n) }))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cgomalloc: %v\n", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go srv.Serve(ln)
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
}
