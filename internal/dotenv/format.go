// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"fmt"
	"strings"
)

// Format is a file syntax that [Parse] reads and [Write] writes.
type Format int

const (
	// Dotenv is the dialect the mainstream dotenv libraries share (the
	// default; see the package documentation).
	Dotenv Format = iota
	// Systemd is the syntax of systemd's EnvironmentFile= (load_env_file).
	Systemd
	// Docker is the syntax of `docker run --env-file`: KEY=VALUE taken
	// literally, no quotes, no inline comments.
	Docker
	// JSON is one flat JSON object whose values are all strings.
	JSON
)

var formatNames = [...]string{Dotenv: "dotenv", Systemd: "systemd", Docker: "docker", JSON: "json"}

// String returns the canonical name of the format.
func (f Format) String() string {
	if f >= 0 && int(f) < len(formatNames) {
		return formatNames[f]
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat returns the format named s: "dotenv" (or "env"), "systemd"
// (or "environmentfile"), "docker" (or "env-file") or "json", in any case.
// It wraps [ErrUnknownFormat] for anything else.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "dotenv", "env", ".env":
		return Dotenv, nil
	case "systemd", "environmentfile":
		return Systemd, nil
	case "docker", "env-file", "envfile":
		return Docker, nil
	case "json":
		return JSON, nil
	}
	return 0, fmt.Errorf("parse format %q: %w (want dotenv, systemd, docker or json)", s, ErrUnknownFormat)
}

// Set implements pflag.Value, so a Format can be a command-line flag. It
// wraps [ErrUnknownFormat] for an unknown name and then leaves f unchanged.
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// Type implements pflag.Value.
func (Format) Type() string { return "format" }

func (f Format) valid() bool { return f >= Dotenv && f <= JSON }
