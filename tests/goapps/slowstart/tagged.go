//go:build goleak_tagged

package main

import (
	"fmt"
	"net/http"
)

// Built only with -tags=goleak_tagged: shows that goleak_build_flags reach go build.
func init() {
	http.HandleFunc("GET /tagged", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "built with -tags=goleak_tagged")
	})
}
