package main

// Watches: a stateful API, the shape of most integration suites. POST
// /api/watches creates a watch, which keeps a goroutine and an open file in
// -data-dir until DELETE /api/watches/{id} removes it. A test that creates one
// and removes it (in a fixture's teardown, say) leaves nothing behind.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

type watch struct {
	file *os.File
	stop chan struct{}
	done chan struct{}
}

var (
	watchSeq atomic.Int64
	watchMu  sync.Mutex
	watches  = map[string]*watch{}
)

// run is the watch's goroutine: it holds the watch until it is removed.
func (w *watch) run() {
	defer close(w.done)
	<-w.stop
}

func handleCreateWatch(rw http.ResponseWriter, r *http.Request) {
	id := fmt.Sprintf("w%d", watchSeq.Add(1))
	f, err := os.Create(filepath.Join(dataDir, "watch-"+id))
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	w := &watch{file: f, stop: make(chan struct{}), done: make(chan struct{})}
	watchMu.Lock()
	watches[id] = w
	watchMu.Unlock()
	go w.run()
	rw.WriteHeader(http.StatusCreated)
	fmt.Fprint(rw, id)
}

func handleDeleteWatch(rw http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	watchMu.Lock()
	w, ok := watches[id]
	delete(watches, id)
	watchMu.Unlock()
	if !ok {
		http.NotFound(rw, r)
		return
	}
	close(w.stop)
	<-w.done
	w.file.Close()
	os.Remove(w.file.Name())
	rw.WriteHeader(http.StatusNoContent)
}
