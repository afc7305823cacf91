package main

// Price lookups: pattern "chan-send".
//
// A quote comes from a pricing backend that is slower than our deadline, so
// callers give up and fall back to the list price. The backend call runs in a
// goroutine that hands its answer back over a channel.

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// quoteBudget is how long one request waits for the pricing backend.
const quoteBudget = 2 * time.Millisecond

type Quote struct {
	SKU    string
	Cents  int64
	Source string
}

type PriceService struct{}

var prices PriceService

// backendCall stands for one call to the slow pricing backend. Its answer
// always arrives after the caller gave up: the caller closes late when it
// stops waiting. (A real backend is just slow; the demo makes the ordering
// deterministic instead of relying on latency.)
type backendCall struct {
	late      chan struct{} // closed by the caller once it stopped waiting
	answering chan struct{} // closed by the worker just before it hands over
}

func (c *backendCall) quote(sku string) Quote {
	<-c.late
	p, _ := findProduct(sku)
	return Quote{SKU: sku, Cents: p.PriceCents * 9 / 10, Source: "backend"}
}

// fetchQuote runs in its own goroutine: it asks the backend and hands the
// answer to the caller over out.
func (s *PriceService) fetchQuote(call *backendCall, sku string, out chan<- Quote) {
	q := call.quote(sku)
	close(call.answering)
	out <- q // with an unbuffered out this blocks forever: the caller is gone
}

// lookup waits for the backend's answer on out until ctx ends.
func (s *PriceService) lookup(ctx context.Context, sku string, out chan Quote) Quote {
	call := &backendCall{late: make(chan struct{}), answering: make(chan struct{})}
	go s.fetchQuote(call, sku, out)
	// Demo handshake: before returning, let the late answer arrive and wait
	// until the worker is at its send, so the leak exists when we respond.
	defer func() { close(call.late); <-call.answering }()
	select {
	case q := <-out:
		return q
	case <-ctx.Done():
		p, _ := findProduct(sku)
		return Quote{SKU: sku, Cents: p.PriceCents, Source: "list price"}
	}
}

// QuoteLeaky. BUG: the result channel is unbuffered. Once the caller timed
// out nobody will ever receive from it, so fetchQuote blocks forever on its
// send, keeping its goroutine and everything it references.
func (s *PriceService) QuoteLeaky(ctx context.Context, sku string) Quote {
	return s.lookup(ctx, sku, make(chan Quote))
}

// QuoteFixed gives the channel a buffer of one: the late answer is dropped
// into it, the worker exits, and the channel becomes garbage.
func (s *PriceService) QuoteFixed(ctx context.Context, sku string) Quote {
	return s.lookup(ctx, sku, make(chan Quote, 1))
}

func chanSendLeaky(r *http.Request, n int) (string, error) { return quoteMany(r, n, prices.QuoteLeaky) }
func chanSendFixed(r *http.Request, n int) (string, error) { return quoteMany(r, n, prices.QuoteFixed) }

func quoteMany(r *http.Request, n int, quote func(context.Context, string) Quote) (string, error) {
	ctx, cancel := context.WithTimeout(r.Context(), quoteBudget)
	defer cancel()
	fallbacks := 0
	for i := range n {
		if q := quote(ctx, products[i%len(products)].SKU); q.Source != "backend" {
			fallbacks++
		}
	}
	return fmt.Sprintf("%d quotes, %d fell back to the list price", n, fallbacks), nil
}
