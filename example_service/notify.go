package main

// Notifications: pattern "waitgroup".
//
// A batch of notifications is delivered; a background goroutine waits for
// the whole batch with a sync.WaitGroup and then records it as complete.

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
)

type recipient struct {
	Email    string
	OptedOut bool
}

var batchRecipients = []recipient{
	{"ana@example.com", false},
	{"bo@example.com", true},
	{"cy@example.com", false},
}

type Notifier struct {
	delivered   atomic.Int64
	batchesDone atomic.Int64
}

var notifier Notifier

// deliver stands in for talking to the mail relay.
func (nt *Notifier) deliver(rc recipient) { nt.delivered.Add(1) }

// awaitBatch marks the batch complete once every recipient is accounted for.
func (nt *Notifier) awaitBatch(pending *sync.WaitGroup, waiting chan<- struct{}) {
	close(waiting)
	pending.Wait() // leaky variant: the counter never reaches zero
	nt.batchesDone.Add(1)
}

// SendBatchLeaky. BUG: the counter is set to one per recipient, but the
// opted-out branch skips pending.Done(), so the counter never reaches zero
// and awaitBatch waits forever.
func (nt *Notifier) SendBatchLeaky(rcpts []recipient) {
	var pending sync.WaitGroup
	pending.Add(len(rcpts))
	waiting := make(chan struct{})
	go nt.awaitBatch(&pending, waiting)
	<-waiting
	for _, rc := range rcpts {
		if rc.OptedOut {
			continue
		}
		nt.deliver(rc)
		pending.Done()
	}
}

// SendBatchFixed accounts for every recipient, delivered or skipped.
func (nt *Notifier) SendBatchFixed(rcpts []recipient) {
	var pending sync.WaitGroup
	pending.Add(len(rcpts))
	waiting := make(chan struct{})
	go nt.awaitBatch(&pending, waiting)
	<-waiting
	for _, rc := range rcpts {
		if !rc.OptedOut {
			nt.deliver(rc)
		}
		pending.Done()
	}
}

func waitgroupLeaky(r *http.Request, n int) (string, error) {
	return sendBatches(n, notifier.SendBatchLeaky)
}

func waitgroupFixed(r *http.Request, n int) (string, error) {
	return sendBatches(n, notifier.SendBatchFixed)
}

func sendBatches(n int, send func([]recipient)) (string, error) {
	for range n {
		send(batchRecipients)
	}
	return fmt.Sprintf("sent %d batches of %d recipients", n, len(batchRecipients)), nil
}
