// Command silent listens on -addr and accepts TCP connections but never
// reads from nor writes to them: every HTTP request hangs, so a readiness
// probe has to time out. Connections are held open until the process ends.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "silent: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	var held []net.Conn // keeps the connections open (and reachable)
	for {
		conn, err := ln.Accept()
		if err != nil {
			fmt.Fprintf(os.Stderr, "silent: %v\n", err)
			os.Exit(1)
		}
		held = append(held, conn)
	}
}
