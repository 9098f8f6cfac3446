// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package mcp

// harden does nothing here: see harden_linux.go.
func harden() error { return nil }

func startDumpable(start func() error) error { return start() }
