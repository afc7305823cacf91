package main

// Client sessions: patterns "context" (price-update subscriptions) and
// "ticker" (session heartbeats).

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// ---- subscriptions: pattern "context" ----

// Subscription streams price updates to a client until it is closed.
type Subscription struct {
	id     int64
	cancel context.CancelFunc
	sent   atomic.Int64
}

var (
	subSeq     atomic.Int64
	activeSubs atomic.Int64
)

// openSubscription starts the goroutine that tears the subscription down
// when its context ends.
func openSubscription() *Subscription {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscription{id: subSeq.Add(1), cancel: cancel}
	activeSubs.Add(1)
	watching := make(chan struct{})
	go s.watch(ctx, watching)
	<-watching
	return s
}

// watch waits for the end of the subscription, then cleans up after it.
func (s *Subscription) watch(ctx context.Context, watching chan<- struct{}) {
	close(watching)
	<-ctx.Done() // leaky variant: nobody ever cancels ctx
	activeSubs.Add(-1)
}

func (s *Subscription) sendSnapshot() { s.sent.Add(int64(len(products))) }

// Close ends the subscription.
func (s *Subscription) Close() { s.cancel() }

// contextLeaky. BUG: the handler sends the snapshot and returns without
// s.Close(): the cancel func is never called, so watch waits on ctx.Done()
// forever, keeping the goroutine and the context alive.
func contextLeaky(r *http.Request, n int) (string, error) {
	for range n {
		s := openSubscription()
		s.sendSnapshot()
	}
	return fmt.Sprintf("served %d subscriptions (never closed)", n), nil
}

// contextFixed closes every subscription: cancel runs and watch exits.
func contextFixed(r *http.Request, n int) (string, error) {
	for range n {
		s := openSubscription()
		s.sendSnapshot()
		s.Close()
	}
	return fmt.Sprintf("served %d subscriptions", n), nil
}

// ---- heartbeats: pattern "ticker" ----

const heartbeatEvery = time.Second

// Session is a client session whose last-seen time a heartbeat refreshes.
type Session struct {
	lastSeen atomic.Int64
}

func (s *Session) touch(t time.Time) { s.lastSeen.Store(t.UnixNano()) }

// heartbeatLeaky. BUG: it ranges over the ticker's channel with no way out,
// and nobody stops the ticker: the goroutine lives forever.
func (s *Session) heartbeatLeaky(t *time.Ticker, running chan<- struct{}) {
	close(running)
	for now := range t.C {
		s.touch(now)
	}
}

// heartbeatFixed has an exit; its caller also stops the ticker.
func (s *Session) heartbeatFixed(t *time.Ticker, done <-chan struct{}, running chan<- struct{}) {
	close(running)
	for {
		select {
		case now := <-t.C:
			s.touch(now)
		case <-done:
			return
		}
	}
}

func tickerLeaky(r *http.Request, n int) (string, error) {
	for range n {
		s := &Session{}
		t := time.NewTicker(heartbeatEvery)
		running := make(chan struct{})
		go s.heartbeatLeaky(t, running)
		<-running
		s.touch(time.Now())
	}
	return fmt.Sprintf("%d sessions served; heartbeats left running", n), nil
}

func tickerFixed(r *http.Request, n int) (string, error) {
	for range n {
		s := &Session{}
		t := time.NewTicker(heartbeatEvery)
		done, running := make(chan struct{}), make(chan struct{})
		go s.heartbeatFixed(t, done, running)
		<-running
		s.touch(time.Now())
		t.Stop()
		close(done)
	}
	return fmt.Sprintf("%d sessions served; heartbeats stopped", n), nil
}
