package main

// Reports: patterns "pipe" (the streaming export) and "cache" (rendered
// report pages).

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// ---- streaming export: pattern "pipe" ----

type reportSum struct {
	bytes  int64
	sha256 string
	err    error
}

// reportRows renders the orders report as CSV lines.
func reportRows() []string {
	rows := []string{"sku,name,price_cents\n"}
	for _, p := range products {
		rows = append(rows, fmt.Sprintf("%s,%q,%d\n", p.SKU, p.Name, p.PriceCents))
	}
	return rows
}

// checksumReport consumes the export as it is streamed through the pipe and
// reports its size and checksum once the writer closes the pipe.
func checksumReport(pr *io.PipeReader, done chan<- reportSum) {
	h := sha256.New()
	buf := make([]byte, 1024)
	var size int64
	for {
		n, err := pr.Read(buf) // leaky variant: blocks here forever, no EOF comes
		h.Write(buf[:n])
		size += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			done <- reportSum{err: err}
			return
		}
	}
	done <- reportSum{bytes: size, sha256: hex.EncodeToString(h.Sum(nil))}
}

// startExport streams the report into a pipe read by checksumReport. When
// it returns, the reader has consumed every row (pipe writes are synchronous).
func startExport() (*io.PipeWriter, <-chan reportSum, error) {
	pr, pw := io.Pipe()
	done := make(chan reportSum, 1)
	go checksumReport(pr, done)
	for _, row := range reportRows() {
		if _, err := io.WriteString(pw, row); err != nil {
			pw.CloseWithError(err)
			return nil, nil, err
		}
	}
	return pw, done, nil
}

// exportLeaky. BUG: the writer is never closed, so checksumReport never
// sees EOF and stays blocked in the pipe read (io.(*pipe).read) forever.
func exportLeaky() (string, error) {
	_, _, err := startExport()
	return "streamed", err
}

// exportFixed closes the writer and collects the reader's result.
func exportFixed() (string, error) {
	pw, done, err := startExport()
	if err != nil {
		return "", err
	}
	pw.Close()
	sum := <-done
	return sum.sha256, sum.err
}

func pipeLeaky(r *http.Request, n int) (string, error) { return exportMany(n, exportLeaky) }
func pipeFixed(r *http.Request, n int) (string, error) { return exportMany(n, exportFixed) }

func exportMany(n int, export func() (string, error)) (string, error) {
	last := ""
	for range n {
		var err error
		if last, err = export(); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("exported the report %d times (last: %s)", n, last), nil
}

// ---- rendered pages: pattern "cache" ----

var pageSeq atomic.Int64

// renderPage renders a report page: kb KiB, every byte written, so the
// memory is really allocated and touched.
func renderPage(kb int, seed int64) []byte {
	page := make([]byte, kb<<10)
	for i := range page {
		page[i] = 'a' + byte((int64(i)+seed)%26)
	}
	return page
}

// pageCache memoises rendered pages. BUG: the key is unique per request (it
// carries the request's sequence number), so an entry is never hit again and
// never evicted: the map grows by kb KiB per request, forever.
var pageCache = struct {
	sync.Mutex
	pages map[string][]byte
}{pages: map[string][]byte{}}

func cachePageLeaky(kb int) int {
	seq := pageSeq.Add(1)
	page := renderPage(kb, seq)
	pageCache.Lock()
	defer pageCache.Unlock()
	pageCache.pages[fmt.Sprintf("report-%d", seq)] = page
	return len(pageCache.pages)
}

// boundedCache is the fix: it holds at most limit pages, evicting the
// oldest, so its memory stops growing after the first limit inserts.
type boundedCache struct {
	mu    sync.Mutex
	limit int
	order []string
	pages map[string][]byte
}

func (c *boundedCache) put(key string, page []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pages[key]; !ok {
		if len(c.order) == c.limit {
			delete(c.pages, c.order[0])
			c.order = append(c.order[:0], c.order[1:]...)
		}
		c.order = append(c.order, key)
	}
	c.pages[key] = page
	return len(c.pages)
}

// recentPages keeps only the most recently rendered page.
var recentPages = &boundedCache{limit: 1, pages: map[string][]byte{}}

func cachePageFixed(kb int) int {
	seq := pageSeq.Add(1)
	return recentPages.put(fmt.Sprintf("report-%d", seq), renderPage(kb, seq))
}

func cacheLeaky(r *http.Request, n int) (string, error) { return renderMany(r, n, cachePageLeaky) }
func cacheFixed(r *http.Request, n int) (string, error) { return renderMany(r, n, cachePageFixed) }

func renderMany(r *http.Request, n int, cachePage func(kb int) int) (string, error) {
	kb, err := intParam(r, "kb", 256, 1, 64<<10)
	if err != nil {
		return "", badRequest{err}
	}
	if n*kb > 1<<20 {
		return "", badRequest{fmt.Errorf("n*kb must stay within 1 GiB")}
	}
	entries := 0
	for range n {
		entries = cachePage(kb)
	}
	return fmt.Sprintf("rendered %d pages of %d KiB; cache holds %d pages", n, kb, entries), nil
}
