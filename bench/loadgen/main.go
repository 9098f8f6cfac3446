// SPDX-License-Identifier: Apache-2.0

// Command loadgen measures ov-server under load, against a trivial Go HTTP server that returns
// the same bytes from memory, in the same run on the same machine:
//
//   - replay: the two requests of one `ov run --machine-key` (GET /v1/machine, then a 50-secret
//     environment), from N concurrent clients, first against the trivial server, then ov-server;
//   - mix: 90% reads of a 50-secret environment (machine keys), 10% commits (one secret changed,
//     new signed manifest, device key), against one and then two ov-server instances sharing the
//     database;
//   - overload: open-loop arrivals at 4x the mix throughput: the server sheds with 503 +
//     Retry-After, commits go through internal/api (which backs off with jitter), and afterwards
//     every environment must hold exactly what its writer committed.
//
// It reports throughput, p50/p99 latency, errors, and server CPU per request (from
// /proc/PID/stat). --db is passed to ov-server as it is (a SQLite path, or postgres://...).
//
//	go build -o bin/ov-server ./cmd/ov-server && go run ./bench/loadgen -ov-server bin/ov-server
package main

import (
	"fmt"
	"os"
)

func main() {
	if file, ok := isTrivialFlag(os.Args[1:]); ok {
		if err := serveTrivial(file); err != nil {
			fmt.Fprintf(os.Stderr, "loadgen: error: %v\n", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(os.Args[1:]))
}
