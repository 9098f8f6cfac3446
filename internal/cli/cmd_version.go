// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"

	"github.com/opaquevault/opaquevault/internal/version"
)

// version prints "ov VERSION", or with --json {"schema_version":1,"version":"VERSION"}.
func (a *App) version(ctx context.Context, args []string) error {
	fs := a.flags()
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	return a.printVersion()
}

func (a *App) printVersion() error {
	if a.g.JSON {
		return a.printJSON(map[string]string{"version": version.String()})
	}
	fmt.Fprintf(a.io.Out, "ov %s\n", version.String())
	return nil
}
