// Command example_service is the demo service of pytest-goleak: a tiny
// catalog/orders API that also carries a catalogue of classic Go leaks.
//
// Every leak has two routes doing the same work: GET /leaky/<name> leaks,
// GET /fixed/<name> does not. Everything, including /debug/pprof/, is served
// on one mux (http.DefaultServeMux) on the -addr address.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // registers /debug/pprof/ on http.DefaultServeMux
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Settings from the command line, set once in main before serving.
var (
	dataDir  string // where the files the service opens and creates live
	upstream string // base URL of the upstream HTTP service, no trailing slash
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to serve the API and /debug/pprof/ on")
	flag.StringVar(&dataDir, "data-dir", os.TempDir(), "directory for the files the service opens and creates")
	flag.StringVar(&upstream, "upstream", "", "base URL of the upstream HTTP service (default: this service's own address)")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintf(os.Stderr, "example_service: %v\n", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	if err := prepareDataDir(); err != nil {
		return err
	}
	defer removeDataFiles()

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if upstream == "" {
		upstream = "http://" + ln.Addr().String()
	}
	upstream = strings.TrimSuffix(upstream, "/")

	registerRoutes(http.DefaultServeMux) // net/http/pprof registered itself there already
	srv := &http.Server{
		Handler:           http.DefaultServeMux,
		ReadHeaderTimeout: 10 * time.Second,
		// No IdleTimeout on purpose: an idle keep-alive connection lives until
		// its client closes it, like with most servers' defaults. That is what
		// lets /leaky/http-body show on both ends of the connection.
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the default way
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		fmt.Fprintf(os.Stderr, "shutdown: %v; closing the remaining connections\n", err)
		srv.Close()
	}
	fmt.Fprintln(os.Stderr, "shut down")
	return nil
}

// workFunc does the work of one leak route n times and describes the result.
type workFunc func(r *http.Request, n int) (detail string, err error)

// leakPattern is one entry of the leak catalogue: a leaky route and its
// fixed twin.
type leakPattern struct {
	name   string   // route suffix: /leaky/<name>, /fixed/<name>
	signal string   // where the leak shows: goroutines, heap, fds, children, disk
	what   string   // what stays behind per unit of n on the leaky route
	maxN   int      // upper bound for the n query parameter
	leaky  workFunc // leaks
	fixed  workFunc // same work, no leak
}

// leakPatterns is the catalogue served under /leaky/ and /fixed/.
var leakPatterns = []leakPattern{
	{"chan-send", "goroutines", "a goroutine blocked sending on an unbuffered channel nobody reads", 100000, chanSendLeaky, chanSendFixed},
	{"waitgroup", "goroutines", "a goroutine blocked in sync.WaitGroup.Wait", 100000, waitgroupLeaky, waitgroupFixed},
	{"busy-worker", "goroutines", "a poller goroutine that never stops (sleeps 10ms per loop)", 1000, busyWorkerLeaky, busyWorkerFixed},
	{"context", "goroutines", "a goroutine waiting on ctx.Done() of a context never cancelled", 100000, contextLeaky, contextFixed},
	{"pipe", "goroutines", "a goroutine blocked reading an io.Pipe whose writer is never closed", 100000, pipeLeaky, pipeFixed},
	{"mutex", "goroutines", "a goroutine blocked in sync.Mutex.Lock behind a mutex left locked", 100000, mutexLeaky, mutexFixed},
	{"cache", "heap", "kb KiB (query kb, default 256) in a global map, never evicted", 1000, cacheLeaky, cacheFixed},
	{"open", "fds", "an open file descriptor on the product feed file", 5000, openLeaky, openFixed},
	{"http-body", "goroutines, fds", "an unclosed response body: client readLoop+writeLoop goroutines and socket, plus the server side of the connection", 2000, httpBodyLeaky, httpBodyFixed},
	{"listener", "goroutines, fds", "a listening socket and its accept-loop goroutine", 5000, listenerLeaky, listenerFixed},
	{"exec", "children, fds", "a zombie child process (never waited for) and its pidfd", 200, execLeaky, execFixed},
	{"tempfile", "fds, disk", "an open temp file in -data-dir, never closed nor removed", 5000, tempfileLeaky, tempfileFixed},
	{"scratch", "disk", "a closed scratch file in os.TempDir() ($TMPDIR), never removed", 5000, scratchLeaky, scratchFixed},
	{"ticker", "goroutines", "a goroutine looping on a time.Ticker that is never stopped", 100000, tickerLeaky, tickerFixed},
	{"mmap", "offheap", "mb MiB (query mb, default 16) mapped with syscall.Mmap, written, never unmapped", 64, mmapLeaky, mmapFixed},
}

func registerRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", handleIndex)
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.HandleFunc("GET /work", handleWork)
	mux.HandleFunc("GET /api/products", handleListProducts)
	mux.HandleFunc("GET /api/products/{sku}", handleGetProduct)
	mux.HandleFunc("GET /api/orders", handleListOrders)
	mux.HandleFunc("POST /api/orders", handleCreateOrder)
	mux.HandleFunc("POST /api/watches", handleCreateWatch)
	mux.HandleFunc("DELETE /api/watches/{id}", handleDeleteWatch)
	for _, p := range leakPatterns {
		mux.Handle("GET /leaky/"+p.name, p.handler("leaky", p.leaky))
		mux.Handle("GET /fixed/"+p.name, p.handler("fixed", p.fixed))
	}
	mux.HandleFunc("GET /admin/crash", handleCrash)
	mux.HandleFunc("GET /admin/grow", handleGrow)
	mux.HandleFunc("GET /admin/release", handleRelease)
	mux.HandleFunc("GET /admin/garbage", handleGarbage)
	mux.HandleFunc("GET /admin/init-once", handleInitOnce)
	mux.HandleFunc("GET /admin/pool-warm", handlePoolWarm)
}

type leakResult struct {
	Pattern string `json:"pattern"`
	Variant string `json:"variant"`
	N       int    `json:"n"`
	Signal  string `json:"signal"`
	Detail  string `json:"detail"`
}

// handler parses n, does the work and answers. The work functions return
// only once the leak (if any) has really happened, so a client that gets the
// response can take its snapshot right away.
func (p leakPattern) handler(variant string, work workFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := intParam(r, "n", 1, 1, p.maxN)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		detail, err := work(r, n)
		if br := (badRequest{}); errors.As(err, &br) {
			http.Error(w, br.Error(), http.StatusBadRequest)
			return
		}
		if err != nil {
			http.Error(w, fmt.Sprintf("%s/%s: %v", variant, p.name, err), http.StatusInternalServerError)
			return
		}
		writeJSON(w, http.StatusOK, leakResult{Pattern: p.name, Variant: variant, N: n, Signal: p.signal, Detail: detail})
	})
}

func handleIndex(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	b.WriteString("example_service: catalog/orders demo API with a leak catalogue\n\n")
	b.WriteString("GET  /healthz\nGET  /work?n=N\nGET  /api/products\nGET  /api/products/{sku}\nGET  /api/orders\nPOST /api/orders\nPOST /api/watches\nDELETE /api/watches/{id}\n\n")
	names := make([]string, 0, len(leakPatterns))
	for _, p := range leakPatterns {
		names = append(names, p.name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "GET  %-22s GET  %s\n", "/leaky/"+name, "/fixed/"+name)
	}
	b.WriteString("\nGET  /admin/crash?mode=panic|exit&code=N\nGET  /admin/grow?goroutines=N&heap_mb=M&after_ms=T\nGET  /admin/release\nGET  /admin/garbage?mb=M\nGET  /admin/init-once\nGET  /admin/pool-warm\nGET  /debug/pprof/\n")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, b.String())
}

func handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "ok")
}

// badRequest marks an error caused by the request's parameters.
type badRequest struct{ error }

// intParam reads an integer query parameter, with a default and bounds.
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, fmt.Errorf("query parameter %s must be an integer in [%d, %d], got %q", name, lo, hi, s)
	}
	return v, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
