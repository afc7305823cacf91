// spawner is a server that starts a long-lived child process at start-up,
// as servers with helper processes do. The tests use it to check that no
// process of the service's group survives pytest, however pytest ends.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	dataDir := flag.String("data-dir", ".", "where child.pid is written")
	flag.Parse()

	child := exec.Command("sleep", "300")
	if err := child.Start(); err != nil {
		log.Fatalf("spawner: cannot start child: %v", err)
	}
	pidFile := filepath.Join(*dataDir, "child.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(child.Process.Pid)), 0o644); err != nil {
		log.Fatalf("spawner: %v", err)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("spawner: %v", err)
	}
	fmt.Fprintf(os.Stderr, "listening on %s (child %d)\n", ln.Addr(), child.Process.Pid)
	log.Fatal(http.Serve(ln, nil))
}
