package main

// Uploads: patterns "busy-worker" (the chunk processor), "tempfile" (the
// upload spool), "scratch" (the upload export) and "exec" (the post-upload
// hook).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// uploadChunk makes the i-th demo upload.
func uploadChunk(i int) []byte {
	return []byte(fmt.Sprintf("upload %d: %s\n", i, "lorem ipsum dolor sit amet, consectetur adipiscing elit"))
}

// ---- chunk processor: pattern "busy-worker" ----

type uploadJob struct {
	data   []byte
	result chan<- string
}

// uploadQueue feeds one upload's chunks to its processor goroutine.
type uploadQueue struct {
	jobs chan uploadJob
}

// pollLeaky is the processor loop. BUG: it has no way out (no stop channel,
// no context), so the goroutine outlives its queue and keeps waking up 100
// times a second forever.
func (q *uploadQueue) pollLeaky() {
	for {
		select {
		case j := <-q.jobs:
			j.result <- checksum(j.data)
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// pollFixed is the same loop with an exit: it returns once ctx is cancelled.
func (q *uploadQueue) pollFixed(ctx context.Context, stopped *sync.WaitGroup) {
	defer stopped.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-q.jobs:
			j.result <- checksum(j.data)
		default:
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// processUploads starts a processor per upload and waits for every
// checksum; getting a result proves the poller is running its loop.
func processUploads(n int, start func(q *uploadQueue)) {
	results := make([]chan string, n)
	for i := range n {
		q := &uploadQueue{jobs: make(chan uploadJob, 1)}
		start(q)
		results[i] = make(chan string, 1)
		q.jobs <- uploadJob{data: uploadChunk(i), result: results[i]}
	}
	for _, res := range results {
		<-res
	}
}

func busyWorkerLeaky(r *http.Request, n int) (string, error) {
	processUploads(n, func(q *uploadQueue) { go q.pollLeaky() })
	return fmt.Sprintf("processed %d uploads; %d pollers left running", n, n), nil
}

func busyWorkerFixed(r *http.Request, n int) (string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var stopped sync.WaitGroup
	processUploads(n, func(q *uploadQueue) {
		stopped.Add(1)
		go q.pollFixed(ctx, &stopped)
	})
	cancel()
	stopped.Wait()
	return fmt.Sprintf("processed %d uploads; pollers stopped", n), nil
}

// ---- upload spool: pattern "tempfile" ----

// spool holds the part files of uploads still being received, by upload id.
var spool = struct {
	sync.Mutex
	parts map[string]*os.File
}{parts: map[string]*os.File{}}

var uploadSeq atomic.Int64

// receiveUploadLeaky. BUG: the part file is parked in the spool "until the
// client sends the rest", but nothing ever completes, closes or removes it:
// one open fd and one file on disk per upload, forever. The spool keeps the
// *os.File reachable, so the GC's finalizer never closes it either.
func receiveUploadLeaky(data []byte) (string, error) {
	f, err := os.CreateTemp(dataDir, "upload-*.part")
	if err != nil {
		return "", err
	}
	id := fmt.Sprintf("up-%d", uploadSeq.Add(1))
	spool.Lock()
	spool.parts[id] = f
	spool.Unlock()
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	return checksum(data), nil
}

// receiveUploadFixed spools to the same kind of file but closes and removes
// it once the upload is processed.
func receiveUploadFixed(data []byte) (string, error) {
	return spoolAndRemove(dataDir, "upload-*.part", data)
}

// spoolAndRemove writes data to a new temp file in dir (os.TempDir() if dir
// is ""), closes it and removes it: what the fixed twins do.
func spoolAndRemove(dir, pattern string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return "", err
	}
	return checksum(data), f.Close()
}

func tempfileLeaky(r *http.Request, n int) (string, error) { return receiveMany(n, receiveUploadLeaky) }
func tempfileFixed(r *http.Request, n int) (string, error) { return receiveMany(n, receiveUploadFixed) }

func receiveMany(n int, receive func([]byte) (string, error)) (string, error) {
	for i := range n {
		if _, err := receive(uploadChunk(i)); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("received %d uploads into %s", n, dataDir), nil
}

// ---- upload export: pattern "scratch" ----

// exportUploadLeaky writes an upload's export to a scratch file in
// os.TempDir() and reports its checksum. BUG: the file is closed but never
// removed: no fd stays open, yet one file per export piles up on disk until
// it fills.
func exportUploadLeaky(data []byte) (string, error) {
	if err := os.WriteFile(filepathForExport(), data, 0o600); err != nil {
		return "", err
	}
	return checksum(data), nil
}

// filepathForExport names a new export file in os.TempDir().
func filepathForExport() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("export-%d.csv", exportSeq.Add(1)))
}

var exportSeq atomic.Int64

// exportUploadFixed writes the same scratch file and removes it when done.
func exportUploadFixed(data []byte) (string, error) {
	return spoolAndRemove("", "export-*.csv", data)
}

func scratchLeaky(r *http.Request, n int) (string, error) { return receiveMany(n, exportUploadLeaky) }
func scratchFixed(r *http.Request, n int) (string, error) { return receiveMany(n, exportUploadFixed) }

// ---- post-upload hook: pattern "exec" ----

// hookCommand is the external post-upload hook (a no-op shell here).
var hookCommand = []string{"/bin/sh", "-c", "exit 0"}

// hooks remembers the hook processes started, for status reporting.
var hooks = struct {
	sync.Mutex
	started []*exec.Cmd
}{}

// runHookLeaky. BUG: the hook is started and never waited for. The child
// exits at once but nobody reaps it, so it stays a zombie (and, on recent
// Go, its pidfd stays open) for the life of the service.
func runHookLeaky() error {
	cmd := exec.Command(hookCommand[0], hookCommand[1:]...)
	if err := cmd.Start(); err != nil {
		return err
	}
	hooks.Lock()
	hooks.started = append(hooks.started, cmd)
	hooks.Unlock()
	return nil
}

// runHookFixed waits for the hook: the child is reaped, its pidfd closed.
func runHookFixed() error {
	return exec.Command(hookCommand[0], hookCommand[1:]...).Run()
}

func execLeaky(r *http.Request, n int) (string, error) { return runHooks(n, runHookLeaky) }
func execFixed(r *http.Request, n int) (string, error) { return runHooks(n, runHookFixed) }

func runHooks(n int, run func() error) (string, error) {
	for range n {
		if err := run(); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("ran the post-upload hook %d times", n), nil
}
