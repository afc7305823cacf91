package main

// Admin and demo-support endpoints used by pytest-goleak's own tests:
// crashing on purpose, growing/releasing goroutines and heap for
// benchmarks, and two kinds of legitimate one-time growth.

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// ---- GET /admin/crash?mode=panic|exit&code=N ----

func handleCrash(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("mode")
	if mode == "" {
		mode = "panic"
	}
	if mode != "panic" && mode != "exit" {
		http.Error(w, "mode must be panic or exit", http.StatusBadRequest)
		return
	}
	code, err := intParam(r, "code", 1, 0, 125)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body := fmt.Sprintf("crashing: mode=%s code=%d\n", mode, code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write([]byte(body))
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	// A panic inside a handler is recovered by net/http, so crash from a
	// goroutine of our own, a moment after the response went out.
	go crash(mode, code)
}

func crash(mode string, code int) {
	time.Sleep(50 * time.Millisecond)
	if mode == "exit" {
		fmt.Fprintf(os.Stderr, "demo exit requested: exiting with code %d\n", code)
		os.Exit(code)
	}
	panic("demo crash requested")
}

// ---- GET /admin/grow?goroutines=N&heap_mb=M[&after_ms=T], GET /admin/release ----

// grown is what /admin/grow holds until /admin/release.
var grown = struct {
	sync.Mutex
	release    chan struct{}
	idlers     sync.WaitGroup
	goroutines int
	heap       [][]byte
}{release: make(chan struct{})}

const growChunk = 64 << 10

// idle parks until release is closed.
func idle(release <-chan struct{}, started, exited *sync.WaitGroup) {
	defer exited.Done()
	started.Done()
	<-release
}

func handleGrow(w http.ResponseWriter, r *http.Request) {
	goroutines, err := intParam(r, "goroutines", 0, 0, 200000)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	heapMB, err := intParam(r, "heap_mb", 0, 0, 4096)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	afterMS, err := intParam(r, "after_ms", 0, 0, 60000)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if afterMS > 0 {
		// The service grows later on its own clock, as a scheduled job does: no request, no goroutine until then.
		time.AfterFunc(time.Duration(afterMS)*time.Millisecond, func() { grow(goroutines, heapMB) })
		writeJSON(w, http.StatusAccepted, map[string]int{"after_ms": afterMS})
		return
	}
	writeJSON(w, http.StatusOK, grow(goroutines, heapMB))
}

// grow starts goroutines idle goroutines and retains heapMB MiB, and says what is held in all.
func grow(goroutines, heapMB int) map[string]int {
	grown.Lock()
	defer grown.Unlock()
	var started sync.WaitGroup
	started.Add(goroutines)
	grown.idlers.Add(goroutines)
	for range goroutines {
		go idle(grown.release, &started, &grown.idlers)
	}
	started.Wait()
	grown.goroutines += goroutines
	for i := range heapMB * (1 << 20 / growChunk) {
		chunk := make([]byte, growChunk)
		for j := range chunk {
			chunk[j] = byte(i + j | 1)
		}
		grown.heap = append(grown.heap, chunk)
	}
	return map[string]int{
		"goroutines": grown.goroutines,
		"heap_mb":    len(grown.heap) * growChunk >> 20,
	}
}

func handleRelease(w http.ResponseWriter, r *http.Request) {
	grown.Lock()
	defer grown.Unlock()
	close(grown.release)
	grown.idlers.Wait()
	released := map[string]int{"goroutines": grown.goroutines, "heap_mb": len(grown.heap) * growChunk >> 20}
	grown.release = make(chan struct{})
	grown.goroutines = 0
	grown.heap = nil
	writeJSON(w, http.StatusOK, map[string]any{"released": released})
}

// ---- GET /admin/init-once: one-time 200 KiB initialisation ----

// taxTable is loaded lazily, once; later calls reuse it (no growth).
var taxTable struct {
	once  sync.Once
	rates []byte
}

func loadTaxTable() []byte {
	rates := make([]byte, 200<<10)
	for i := range rates {
		rates[i] = byte(i%251) + 1
	}
	return rates
}

func handleInitOnce(w http.ResponseWriter, r *http.Request) {
	first := false
	taxTable.once.Do(func() {
		taxTable.rates = loadTaxTable()
		first = true
	})
	writeJSON(w, http.StatusOK, map[string]any{"initialised_now": first, "bytes": len(taxTable.rates)})
}

// ---- GET /admin/pool-warm: a worker pool that warms up to 3 workers ----

// workerPool grows by one long-lived worker per call until it has max.
type workerPool struct {
	mu      sync.Mutex
	max     int
	workers int
	jobs    chan func()
}

var pool = &workerPool{max: 3, jobs: make(chan func())}

// worker runs jobs for the life of the service (by design, not a leak).
func (p *workerPool) worker(running chan<- struct{}) {
	close(running)
	for job := range p.jobs {
		job()
	}
}

func (p *workerPool) warm() (added bool, workers int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.workers < p.max {
		running := make(chan struct{})
		go p.worker(running)
		<-running
		p.workers++
		added = true
	}
	return added, p.workers
}

func handlePoolWarm(w http.ResponseWriter, r *http.Request) {
	added, workers := pool.warm()
	writeJSON(w, http.StatusOK, map[string]any{"added": added, "workers": workers, "max": pool.max})
}
