package main

// Talking to other services: patterns "http-body" (the upstream health
// check) and "listener" (payment webhook callbacks).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ---- upstream health check: pattern "http-body" ----

// Each variant has its own client, so they never share a connection pool.
var (
	// leakyUpstream has no Client.Timeout, like many real clients: a
	// Client.Timeout (or a cancelled request context) would eventually tear
	// down the connection behind an unclosed body and hide the leak.
	leakyUpstream = &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 5 * time.Second,
	}}
	// fixedUpstream is used for an occasional short call: no keep-alive pool
	// to outlive the request.
	fixedUpstream = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 5 * time.Second,
		DisableKeepAlives:     true,
	}}
)

// checkUpstreamLeaky. BUG: resp.Body is neither read to EOF nor closed. The
// transport can neither reuse nor release the connection: its readLoop and
// writeLoop goroutines and its socket stay forever (and, on the upstream's
// side, the server's connection goroutine and socket), and every call dials
// a new connection.
func checkUpstreamLeaky() (string, error) {
	resp, err := leakyUpstream.Get(upstream + "/healthz")
	if err != nil {
		return "", err
	}
	return resp.Status, nil
}

// checkUpstreamFixed drains and closes the body; the connection is then
// closed too (no keep-alive), so nothing outlives the call.
func checkUpstreamFixed() (string, error) {
	resp, err := fixedUpstream.Get(upstream + "/healthz")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "", err
	}
	return resp.Status, nil
}

func httpBodyLeaky(r *http.Request, n int) (string, error) { return checkMany(n, checkUpstreamLeaky) }
func httpBodyFixed(r *http.Request, n int) (string, error) { return checkMany(n, checkUpstreamFixed) }

func checkMany(n int, check func() (string, error)) (string, error) {
	status := ""
	for range n {
		var err error
		if status, err = check(); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("checked %s/healthz %d times: %s", upstream, n, status), nil
}

// ---- payment webhooks: pattern "listener" ----

// webhookReceiver is a callback endpoint opened for a payment provider.
type webhookReceiver struct {
	ln       net.Listener
	stopped  chan struct{}
	received atomic.Int64
}

func openWebhookReceiver() (*webhookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rcv := &webhookReceiver{ln: ln, stopped: make(chan struct{})}
	accepting := make(chan struct{})
	go rcv.acceptLoop(accepting)
	<-accepting
	return rcv, nil
}

// acceptLoop serves callbacks until the listener is closed.
func (rcv *webhookReceiver) acceptLoop(accepting chan<- struct{}) {
	defer close(rcv.stopped)
	close(accepting)
	for {
		conn, err := rcv.ln.Accept() // leaky variant: blocks here forever
		if err != nil {
			return
		}
		rcv.handle(conn)
	}
}

// handle reads one event line and acknowledges it.
func (rcv *webhookReceiver) handle(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := bufio.NewReader(conn).ReadString('\n'); err == nil {
		rcv.received.Add(1)
		io.WriteString(conn, "ok\n")
	}
}

// Close stops the receiver: the listener closes and acceptLoop returns.
func (rcv *webhookReceiver) Close() error {
	err := rcv.ln.Close()
	<-rcv.stopped
	return err
}

// pingWebhook delivers a test event, as the provider does when a callback
// is registered.
func pingWebhook(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "event: ping\n"); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if reply != "ok\n" {
		return errors.New("webhook receiver did not acknowledge")
	}
	return nil
}

// registerWebhookLeaky. BUG: the receiver is never closed once the callback
// is done with: the listening socket and acceptLoop stay forever.
func registerWebhookLeaky() error {
	rcv, err := openWebhookReceiver()
	if err != nil {
		return err
	}
	return pingWebhook(rcv.ln.Addr().String())
}

// registerWebhookFixed closes the receiver when done.
func registerWebhookFixed() error {
	rcv, err := openWebhookReceiver()
	if err != nil {
		return err
	}
	defer rcv.Close()
	return pingWebhook(rcv.ln.Addr().String())
}

func listenerLeaky(r *http.Request, n int) (string, error) {
	return registerMany(n, registerWebhookLeaky)
}

func listenerFixed(r *http.Request, n int) (string, error) {
	return registerMany(n, registerWebhookFixed)
}

func registerMany(n int, register func() error) (string, error) {
	for range n {
		if err := register(); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("registered and pinged %d webhook receivers", n), nil
}
