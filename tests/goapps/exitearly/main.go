// Command exitearly fails at start like a misconfigured service: it writes a
// config error to stderr and exits with code 3 at once. It ignores its
// arguments, so any flags a test passes make no difference.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "fatal: cannot load config: open /nonexistent/config.yaml: no such file or directory")
	os.Exit(3)
}
