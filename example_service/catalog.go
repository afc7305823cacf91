package main

// The catalog and orders API (clean), /work, and the product feed import:
// pattern "open".

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
}

var products = []Product{
	{"sku-1", "Espresso beans 1 kg", 2490},
	{"sku-2", "Pour-over kettle", 4500},
	{"sku-3", "Burr grinder", 12900},
	{"sku-4", "Paper filters x100", 590},
	{"sku-5", "Ceramic dripper", 2200},
	{"sku-6", "Milk jug 600 ml", 1850},
	{"sku-7", "Scale 0.1 g", 3900},
	{"sku-8", "Decaf beans 500 g", 1390},
}

func findProduct(sku string) (Product, bool) {
	for _, p := range products {
		if p.SKU == sku {
			return p, true
		}
	}
	return Product{}, false
}

type Order struct {
	ID         int64  `json:"id"`
	SKU        string `json:"sku"`
	Qty        int    `json:"qty"`
	TotalCents int64  `json:"total_cents"`
	Created    string `json:"created,omitempty"` // RFC 3339, API orders only
}

// orderStore keeps the most recent orders in a fixed-size ring, so its
// memory is bounded however many orders come in.
type orderStore struct {
	mu     sync.Mutex
	ring   [1000]Order
	nextID int64
}

var orders orderStore

func (s *orderStore) add(o Order) Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	o.ID = s.nextID
	s.ring[o.ID%int64(len(s.ring))] = o
	return o
}

func (s *orderStore) recent(limit int) []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Order{}
	for id := s.nextID; id > 0 && id > s.nextID-int64(len(s.ring)) && len(out) < limit; id-- {
		out = append(out, s.ring[id%int64(len(s.ring))])
	}
	return out
}

func handleListProducts(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, products)
}

func handleGetProduct(w http.ResponseWriter, r *http.Request) {
	p, ok := findProduct(r.PathValue("sku"))
	if !ok {
		http.Error(w, "no such product", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func handleListOrders(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit", 20, 1, 1000)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, orders.recent(limit))
}

func handleCreateOrder(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad order: "+err.Error(), http.StatusBadRequest)
		return
	}
	p, ok := findProduct(req.SKU)
	if !ok || req.Qty < 1 || req.Qty > 1000 {
		http.Error(w, "bad order: unknown sku or qty not in [1, 1000]", http.StatusBadRequest)
		return
	}
	if err := apiStock.reserveFixed(req.SKU, req.Qty); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	o := orders.add(Order{SKU: p.SKU, Qty: req.Qty, TotalCents: p.PriceCents * int64(req.Qty), Created: time.Now().UTC().Format(time.RFC3339Nano)})
	writeJSON(w, http.StatusCreated, o)
}

// handleWork does real work that allocates and frees: build n orders, sort
// them, JSON-encode and hash them. Nothing is kept after the response.
func handleWork(w http.ResponseWriter, r *http.Request) {
	n, err := intParam(r, "n", 1000, 1, 200000)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	batch := make([]Order, n)
	for i := range batch {
		p := products[(i*5)%len(products)]
		qty := 1 + (i*7)%5
		batch[i] = Order{ID: int64(i + 1), SKU: p.SKU, Qty: qty, TotalCents: p.PriceCents * int64(qty)}
	}
	sort.Slice(batch, func(a, b int) bool {
		if batch[a].TotalCents != batch[b].TotalCents {
			return batch[a].TotalCents > batch[b].TotalCents
		}
		return batch[a].ID < batch[b].ID
	})
	encoded, err := json.Marshal(batch)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(encoded)
	writeJSON(w, http.StatusOK, map[string]any{
		"orders":       n,
		"json_bytes":   len(encoded),
		"sha256":       hex.EncodeToString(sum[:]),
		"top_order_id": batch[0].ID,
	})
}

// ---- Product feed import: pattern "open" ----

// feedPath is the product feed file, written into -data-dir at start.
var feedPath string

func prepareDataDir() error {
	st, err := os.Stat(dataDir)
	if err != nil {
		return fmt.Errorf("-data-dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("-data-dir %s is not a directory", dataDir)
	}
	feedPath = filepath.Join(dataDir, fmt.Sprintf("example_service-%d-products.csv", os.Getpid()))
	f, err := os.Create(feedPath)
	if err != nil {
		return fmt.Errorf("-data-dir: cannot write the product feed: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "sku,name,price_cents")
	for _, p := range products {
		fmt.Fprintf(w, "%s,%q,%d\n", p.SKU, p.Name, p.PriceCents)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func removeDataFiles() {
	if feedPath != "" {
		os.Remove(feedPath)
	}
}

// feedImport is one run of the product feed import.
type feedImport struct {
	f       *os.File
	started time.Time
	rows    int
}

// imports lists the imports in progress, for status reporting.
var imports = struct {
	sync.Mutex
	active map[*feedImport]bool
}{active: map[*feedImport]bool{}}

func startImport() (*feedImport, error) {
	f, err := os.Open(feedPath)
	if err != nil {
		return nil, err
	}
	imp := &feedImport{f: f, started: time.Now()}
	imports.Lock()
	imports.active[imp] = true
	imports.Unlock()
	return imp, nil
}

// finish closes the feed and drops the import from the registry.
func (imp *feedImport) finish() error {
	imports.Lock()
	delete(imports.active, imp)
	imports.Unlock()
	return imp.f.Close()
}

// countRows reads the feed and counts its product rows.
func (imp *feedImport) countRows() (int, error) {
	sc := bufio.NewScanner(imp.f)
	rows := -1 // header
	for sc.Scan() {
		rows++
	}
	if rows < 0 {
		return 0, errors.New("empty product feed")
	}
	imp.rows = rows
	return rows, sc.Err()
}

// importFeedLeaky. BUG: the import is never finished. The registry keeps
// the *feedImport (and its *os.File) reachable, so not even the GC's file
// finalizer can close it: one file descriptor leaks per import.
func importFeedLeaky() (int, error) {
	imp, err := startImport()
	if err != nil {
		return 0, err
	}
	return imp.countRows()
}

// importFeedFixed finishes the import (close + unregister) on every path.
func importFeedFixed() (int, error) {
	imp, err := startImport()
	if err != nil {
		return 0, err
	}
	defer imp.finish()
	return imp.countRows()
}

func openLeaky(r *http.Request, n int) (string, error) { return importMany(n, importFeedLeaky) }
func openFixed(r *http.Request, n int) (string, error) { return importMany(n, importFeedFixed) }

func importMany(n int, importFeed func() (int, error)) (string, error) {
	rows := 0
	for range n {
		c, err := importFeed()
		if err != nil {
			return "", err
		}
		rows += c
	}
	return fmt.Sprintf("imported %s %d times (%d rows)", filepath.Base(feedPath), n, rows), nil
}
