// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"encoding/json"
	"fmt"
)

// printJSON writes v as one JSON object with "schema_version":1 first. v must marshal to an object.
func (a *App) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	out := []byte(`{"schema_version":1`)
	if len(b) > 2 {
		out = append(out, ',')
		out = append(out, b[1:]...)
	} else {
		out = append(out, '}')
	}
	out = append(out, '\n')
	_, err = a.io.Out.Write(out)
	clear(b)
	clear(out)
	return err
}
