// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// The trivial server: the same answers as ov-server gave to the two requests of
// `ov run --machine-key`, from memory, with the same headers. It is the baseline.

type bodies struct {
	Machine []byte `json:"machine"`
	Env     []byte `json:"env"`
}

func serveTrivial(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var bs bodies
	if err := json.Unmarshal(b, &bs); err != nil {
		return err
	}
	answer := func(body []byte) http.HandlerFunc {
		n := strconv.Itoa(len(body))
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Cache-Control", "no-store")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", n)
			w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/machine", answer(bs.Machine))
	mux.Handle("GET /v1/envs/{id}", answer(bs.Env))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "trivial: listening on http://%s\n", l.Addr())
	return http.Serve(l, mux)
}

func isTrivialFlag(args []string) (string, bool) {
	if len(args) == 2 && args[0] == "-trivial-serve" {
		return args[1], true
	}
	if len(args) == 1 && strings.HasPrefix(args[0], "-trivial-serve=") {
		return strings.TrimPrefix(args[0], "-trivial-serve="), true
	}
	return "", false
}
