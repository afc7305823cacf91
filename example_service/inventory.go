package main

// Stock reservations: pattern "mutex".
//
// Every reservation takes the inventory's lock. The leaky variant returns on
// an error path with the lock still held, so from then on every reservation
// piles up behind it.

import (
	"fmt"
	"net/http"
	"sync"
)

type Inventory struct {
	mu       sync.Mutex
	reserved map[string]int
}

func newInventory() *Inventory { return &Inventory{reserved: map[string]int{}} }

// Separate inventories, so the leaky route's wedged lock can never block the
// fixed route or the API.
var (
	apiStock   = newInventory()
	leakyStock = newInventory()
	fixedStock = newInventory()
)

// reserveLeaky. BUG: the unknown-SKU branch returns without unlocking, so
// the first bad order wedges inv.mu for good.
func (inv *Inventory) reserveLeaky(sku string, qty int) error {
	inv.mu.Lock()
	if _, ok := findProduct(sku); !ok {
		return fmt.Errorf("unknown sku %q", sku)
	}
	inv.reserved[sku] += qty
	inv.mu.Unlock()
	return nil
}

// reserveFixed unlocks on every path (defer).
func (inv *Inventory) reserveFixed(sku string, qty int) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if _, ok := findProduct(sku); !ok {
		return fmt.Errorf("unknown sku %q", sku)
	}
	inv.reserved[sku] += qty
	return nil
}

// reserveInBackground reserves stock for an order off the request path.
func (inv *Inventory) reserveInBackground(reserve func(*Inventory, string, int) error, sku string, queued, finished *sync.WaitGroup) {
	defer finished.Done()
	queued.Done()
	reserve(inv, sku, 1) // leaky variant: blocks here in sync.Mutex.Lock forever
}

// wedging serialises the leaky handler's bad order (see mutexLeaky).
var wedging sync.Mutex

func mutexLeaky(r *http.Request, n int) (string, error) {
	// A bad order takes the buggy error path and leaves the lock held. Demo
	// guard: only while the lock is still free, so that this handler itself
	// never blocks; once wedged, the inventory stays wedged.
	wedging.Lock()
	if leakyStock.mu.TryLock() {
		leakyStock.mu.Unlock()
		leakyStock.reserveLeaky("sku-does-not-exist", 1)
	}
	wedging.Unlock()

	// The orders of this request now pile up behind the lock. Answer once
	// every one of them is on its way into Lock().
	var queued, finished sync.WaitGroup
	queued.Add(n)
	finished.Add(n)
	for i := range n {
		go leakyStock.reserveInBackground((*Inventory).reserveLeaky, products[i%len(products)].SKU, &queued, &finished)
	}
	queued.Wait()
	return fmt.Sprintf("queued %d reservations behind a lock left held", n), nil
}

func mutexFixed(r *http.Request, n int) (string, error) {
	fixedStock.reserveFixed("sku-does-not-exist", 1) // error path, lock released
	var queued, finished sync.WaitGroup
	queued.Add(n)
	finished.Add(n)
	for i := range n {
		go fixedStock.reserveInBackground((*Inventory).reserveFixed, products[i%len(products)].SKU, &queued, &finished)
	}
	queued.Wait()
	finished.Wait()
	return fmt.Sprintf("made %d reservations", n), nil
}
