package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// setup serves the routes on a test server that is also the upstream.
func setup(t *testing.T) *http.ServeMux {
	t.Helper()
	dataDir = t.TempDir()
	t.Setenv("TMPDIR", t.TempDir()) // where os.CreateTemp("", ...) writes
	if err := prepareDataDir(); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	registerRoutes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	upstream = srv.URL
	return mux
}

func call(t *testing.T, mux *http.ServeMux, path string) {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
}

// goMinor is the minor version of the Go that built this test: 22 for go1.22.10.
func goMinor() int {
	var minor int
	if _, err := fmt.Sscanf(runtime.Version(), "go1.%d", &minor); err != nil {
		return 1 << 30 // a development version: assume the newest
	}
	return minor
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// quiet waits until the goroutine count has been stable for 30ms.
func quiet() int {
	last, stable := runtime.NumGoroutine(), 0
	for i := 0; i < 200 && stable < 3; i++ {
		time.Sleep(10 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
	return last
}

// settle waits until cond holds or a second passed.
func settle(cond func() bool) bool {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func TestEveryLeakHasAFixedTwin(t *testing.T) {
	mux := http.NewServeMux()
	registerRoutes(mux)
	seen := map[string]bool{}
	for _, p := range leakPatterns {
		if seen[p.name] {
			t.Errorf("pattern %s listed twice", p.name)
		}
		seen[p.name] = true
		if p.leaky == nil || p.fixed == nil || p.signal == "" || p.maxN < 1 {
			t.Errorf("pattern %s is incomplete", p.name)
		}
		for _, variant := range []string{"leaky", "fixed"} {
			path := "/" + variant + "/" + p.name
			if _, pattern := mux.Handler(httptest.NewRequest("GET", path, nil)); pattern != "GET "+path {
				t.Errorf("GET %s routes to %q", path, pattern)
			}
		}
	}
}

// The fixed twins leave goroutines and fds where they were; the leaky
// routes leave what their signal says.
func TestFixedTwinsAreFlatAndLeakyRoutesLeak(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts fds in /proc/self/fd")
	}
	mux := setup(t)
	for _, p := range leakPatterns {
		call(t, mux, "/fixed/"+p.name+"?n=3") // warm-up: pools, bounded cache
		goroutines, fds := quiet(), openFDs()
		call(t, mux, "/fixed/"+p.name+"?n=3")
		if !settle(func() bool { return runtime.NumGoroutine() <= goroutines && openFDs() <= fds }) {
			t.Errorf("fixed/%s: goroutines %d -> %d, fds %d -> %d", p.name, goroutines, runtime.NumGoroutine(), fds, openFDs())
		}
	}
	if exports, _ := filepath.Glob(filepath.Join(os.TempDir(), "export-*.csv")); len(exports) != 0 {
		t.Errorf("fixed/scratch left %d export files, want 0", len(exports))
	}
	for _, p := range leakPatterns {
		goroutines, fds := quiet(), openFDs()
		call(t, mux, "/leaky/"+p.name+"?n=3")
		time.Sleep(20 * time.Millisecond)
		dg, dfd := runtime.NumGoroutine()-goroutines, openFDs()-fds
		if strings.Contains(p.signal, "goroutines") && dg < 3 {
			t.Errorf("leaky/%s: %d new goroutines, want >= 3", p.name, dg)
		}
		// Before Go 1.23 os/exec kept no pidfd, so an unreaped child holds no fd.
		pidfdless := p.name == "exec" && goMinor() < 23
		if strings.Contains(p.signal, "fds") && !pidfdless && dfd < 3 {
			t.Errorf("leaky/%s: %d new fds, want >= 3", p.name, dfd)
		}
	}
	if exports, _ := filepath.Glob(filepath.Join(os.TempDir(), "export-*.csv")); len(exports) != 3 {
		t.Errorf("leaky/scratch left %d export files, want 3", len(exports))
	}
	if parts, _ := filepath.Glob(filepath.Join(dataDir, "upload-*.part")); len(parts) != 3 {
		t.Errorf("leaky/tempfile left %d part files, want 3", len(parts))
	}
	if len(hooks.started) != 3 {
		t.Errorf("leaky/exec started %d hooks, want 3", len(hooks.started))
	}
	if len(pageCache.pages) != 3 {
		t.Errorf("leaky/cache holds %d pages, want 3", len(pageCache.pages))
	}
}
