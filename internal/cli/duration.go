// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// errDuration is a duration ov cannot read.
var errDuration = errors.New("want a duration such as 90m, 24h or 7d")

// readDuration reads a Go duration or a whole number of days ("7d"); it refuses a negative one.
// Every duration ov takes is read by it, so that "7d" works everywhere.
func readDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, errDuration
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errDuration
	}
	return d, nil
}

// parseDuration accepts Go durations and a days suffix ("90d"), above zero.
func parseDuration(s string) (time.Duration, error) {
	d, err := readDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("invalid duration %q (want for example 90d or 720h)", s)
	}
	return d, nil
}

// durationValue is a pflag duration that also takes days ("7d"), as --max-age does. Its Type is
// "duration", so help shows DURATION and the default as typed (usage.go).
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string { return v.d.String() }
func (v durationValue) Type() string   { return "duration" }
func (v durationValue) Set(s string) error {
	d, err := readDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// durationFlag defines a duration flag that takes days too.
func durationFlag(fs *pflag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Var(durationValue{&d}, name, usage)
	return &d
}
