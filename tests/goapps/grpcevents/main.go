// Command grpcevents is a real grpc-go server whose RPCs leak the way gRPC
// services do, each with a fixed twin. pytest-goleak's tests drive it from
// Python (grpcio) with no generated code: the service is described by hand
// below, as protoc-gen-go-grpc would write it, and its messages are
// protobuf's well-known wrappers (StringValue, BytesValue).
//
// Service goleak.Events, on -addr:
//
//	Subscribe, SubscribeFixed (server stream): one event, then wait for the
//	    next. Subscribe waits on a topic nobody publishes to and never looks at
//	    the stream's context: it outlives the client.
//	Flood, FloodFixed (server stream): 64 KiB chunks until the client goes
//	    away. A client that stops reading and keeps the stream open leaves
//	    Flood blocked in SendMsg; FloodFixed gives up on a stall.
//	Relay, RelayFixed (unary): open a client stream to this server's own
//	    Collect over the ClientConn it keeps, send one item, answer. Relay
//	    abandons that stream; RelayFixed closes it and reads the reply.
//	Collect (client stream): count items until the client closes the stream.
//	Connect, ConnectFixed (unary): call Ping over a new ClientConn to this
//	    server. Connect never closes it.
//	Ping (unary): answers "pong".
//
// pprof is served over HTTP on -debug-addr only. With -stream-workers N, RPCs
// run on grpc-go's pool of N serverWorker goroutines (NumStreamWorkers).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// How long FloodFixed waits for a client to take one chunk before giving up on it.
const stall = 100 * time.Millisecond

type eventsServer struct {
	target     string           // this server's own address, for Connect
	downstream *grpc.ClientConn // kept open from start, for Relay's client streams
	topics     chan string      // nobody publishes: every subscriber waits for the next event forever
}

func (s *eventsServer) Subscribe(req *wrapperspb.StringValue, stream grpc.ServerStream) error {
	if err := stream.SendMsg(wrapperspb.String("subscribed to " + req.GetValue())); err != nil {
		return err
	}
	for event := range s.topics { // leak: never returns once the client has gone
		if err := stream.SendMsg(wrapperspb.String(event)); err != nil {
			return err
		}
	}
	return nil
}

func (s *eventsServer) SubscribeFixed(req *wrapperspb.StringValue, stream grpc.ServerStream) error {
	if err := stream.SendMsg(wrapperspb.String("subscribed to " + req.GetValue())); err != nil {
		return err
	}
	for {
		select {
		case event := <-s.topics:
			if err := stream.SendMsg(wrapperspb.String(event)); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

var chunk = wrapperspb.Bytes(make([]byte, 64<<10))

func (s *eventsServer) Flood(_ *wrapperspb.StringValue, stream grpc.ServerStream) error {
	for {
		// leak: blocks in SendMsg for as long as the client keeps the stream open without reading
		if err := stream.SendMsg(chunk); err != nil {
			return err
		}
	}
}

func (s *eventsServer) FloodFixed(_ *wrapperspb.StringValue, stream grpc.ServerStream) error {
	sent := make(chan error, 1)
	for {
		// SendMsg has no deadline: it runs beside a timer, and returning ends the stream, which ends a blocked SendMsg.
		go func() { sent <- stream.SendMsg(chunk) }()
		select {
		case err := <-sent:
			if err != nil {
				return err
			}
		case <-time.After(stall):
			return status.Errorf(codes.DeadlineExceeded, "client took no chunk for %v", stall)
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

var collectDesc = &grpc.StreamDesc{StreamName: "Collect", ClientStreams: true}

func (s *eventsServer) Relay(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	// leak: a stream on a ClientConn that stays open must be ended (CloseSend and RecvMsg, or a cancelled context)
	stream, err := s.downstream.NewStream(context.WithoutCancel(ctx), collectDesc, "/goleak.Events/Collect")
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(req); err != nil {
		return nil, err
	}
	return wrapperspb.String("relayed"), nil
}

func (s *eventsServer) RelayFixed(ctx context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	stream, err := s.downstream.NewStream(ctx, collectDesc, "/goleak.Events/Collect")
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(req); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	reply := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(reply); err != nil {
		return nil, err
	}
	return reply, nil
}

func (s *eventsServer) Collect(stream grpc.ServerStream) error {
	items := 0
	for {
		item := new(wrapperspb.StringValue)
		err := stream.RecvMsg(item)
		if errors.Is(err, io.EOF) {
			return stream.SendMsg(wrapperspb.String(fmt.Sprintf("collected %d", items)))
		}
		if err != nil {
			return err
		}
		items++
	}
}

func (s *eventsServer) ping(ctx context.Context, fixed bool) (*wrapperspb.StringValue, error) {
	conn, err := grpc.NewClient(s.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	if fixed {
		defer conn.Close()
	} // else leak: the connection and its goroutines, on both ends, stay until the process exits
	reply := new(wrapperspb.StringValue)
	if err := conn.Invoke(ctx, "/goleak.Events/Ping", wrapperspb.String("ping"), reply); err != nil {
		return nil, err
	}
	return reply, nil
}

func (s *eventsServer) Connect(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return s.ping(ctx, false)
}

func (s *eventsServer) ConnectFixed(ctx context.Context, _ *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return s.ping(ctx, true)
}

func (s *eventsServer) Ping(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	return wrapperspb.String("pong"), nil
}

// What protoc-gen-go-grpc would generate for goleak.Events, written by hand.

func _Events_Relay_Handler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(*eventsServer).Relay(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/goleak.Events/Relay"}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(*eventsServer).Relay(ctx, req.(*wrapperspb.StringValue))
	}
	return interceptor(ctx, in, info, handler)
}

func _Events_RelayFixed_Handler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(*eventsServer).RelayFixed(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/goleak.Events/RelayFixed"}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(*eventsServer).RelayFixed(ctx, req.(*wrapperspb.StringValue))
	}
	return interceptor(ctx, in, info, handler)
}

func _Events_Connect_Handler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(*eventsServer).Connect(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/goleak.Events/Connect"}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(*eventsServer).Connect(ctx, req.(*wrapperspb.StringValue))
	}
	return interceptor(ctx, in, info, handler)
}

func _Events_ConnectFixed_Handler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(*eventsServer).ConnectFixed(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/goleak.Events/ConnectFixed"}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(*eventsServer).ConnectFixed(ctx, req.(*wrapperspb.StringValue))
	}
	return interceptor(ctx, in, info, handler)
}

func _Events_Ping_Handler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(*eventsServer).Ping(ctx, in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/goleak.Events/Ping"}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(*eventsServer).Ping(ctx, req.(*wrapperspb.StringValue))
	}
	return interceptor(ctx, in, info, handler)
}

func _Events_Subscribe_Handler(srv any, stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(*eventsServer).Subscribe(in, stream)
}

func _Events_SubscribeFixed_Handler(srv any, stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(*eventsServer).SubscribeFixed(in, stream)
}

func _Events_Flood_Handler(srv any, stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(*eventsServer).Flood(in, stream)
}

func _Events_FloodFixed_Handler(srv any, stream grpc.ServerStream) error {
	in := new(wrapperspb.StringValue)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(*eventsServer).FloodFixed(in, stream)
}

func _Events_Collect_Handler(srv any, stream grpc.ServerStream) error {
	return srv.(*eventsServer).Collect(stream)
}

var eventsServiceDesc = grpc.ServiceDesc{
	ServiceName: "goleak.Events",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Relay", Handler: _Events_Relay_Handler},
		{MethodName: "RelayFixed", Handler: _Events_RelayFixed_Handler},
		{MethodName: "Connect", Handler: _Events_Connect_Handler},
		{MethodName: "ConnectFixed", Handler: _Events_ConnectFixed_Handler},
		{MethodName: "Ping", Handler: _Events_Ping_Handler},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "Subscribe", Handler: _Events_Subscribe_Handler, ServerStreams: true},
		{StreamName: "SubscribeFixed", Handler: _Events_SubscribeFixed_Handler, ServerStreams: true},
		{StreamName: "Flood", Handler: _Events_Flood_Handler, ServerStreams: true},
		{StreamName: "FloodFixed", Handler: _Events_FloodFixed_Handler, ServerStreams: true},
		{StreamName: "Collect", Handler: _Events_Collect_Handler, ClientStreams: true},
	},
}

// Two interceptors of each kind, chained, as services that log and measure have: identity must look through them.

func logUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	return next(ctx, req)
}

func measureUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	return next(ctx, req)
}

func logStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	return next(srv, ss)
}

func measureStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	return next(srv, ss)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "gRPC listen address")
	debugAddr := flag.String("debug-addr", "", "pprof listen address (HTTP); required")
	workers := flag.Uint("stream-workers", 0, "grpc.NumStreamWorkers: run RPCs on a pool of this many goroutines")
	flag.Parse()
	if *debugAddr == "" {
		fmt.Fprintln(os.Stderr, "grpcevents: -debug-addr is required")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcevents: %v\n", err)
		os.Exit(1)
	}
	debugLn, err := net.Listen("tcp", *debugAddr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcevents: %v\n", err)
		os.Exit(1)
	}
	target := ln.Addr().String()
	downstream, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcevents: %v\n", err)
		os.Exit(1)
	}
	server := grpc.NewServer(
		grpc.ChainUnaryInterceptor(logUnary, measureUnary),
		grpc.ChainStreamInterceptor(logStream, measureStream),
		grpc.NumStreamWorkers(uint32(*workers)),
	)
	server.RegisterService(&eventsServiceDesc, &eventsServer{target: target, downstream: downstream, topics: make(chan string)})
	go server.Serve(ln)

	// Relay's connection is made now, so that the first test that relays does not find it new.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	reply := new(wrapperspb.StringValue)
	err = downstream.Invoke(ctx, "/goleak.Events/Ping", wrapperspb.String("ping"), reply, grpc.WaitForReady(true))
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "grpcevents: cannot reach itself: %v\n", err)
		os.Exit(1)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	debug := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go debug.Serve(debugLn)

	fmt.Fprintf(os.Stderr, "listening on %s\n", target)
	fmt.Fprintf(os.Stderr, "debug listening on %s\n", debugLn.Addr())
	stop, cancelStop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancelStop()
	<-stop.Done()
	debug.Close()
	downstream.Close()
	server.Stop()
}
