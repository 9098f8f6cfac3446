// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"fmt"
	"io"
)

// agentInstallHint prints the `ov agent install` to run next for a machine key written to key.
// The agent runs as the service's account, never as root (`agent install` refuses --user root):
// run as root, the hint names a placeholder account and the chown that hands it the key.
func agentInstallHint(w io.Writer, key, app, env, user string) {
	if user == "root" {
		fmt.Fprintf(w, "Next: sudo chown SERVICE_USER %s   # the account your service runs as (not root)\n", key)
		fmt.Fprintf(w, "      sudo ov agent install --machine-key %s --app %s --env %s --user SERVICE_USER --enable\n", key, app, env)
		return
	}
	fmt.Fprintf(w, "Next: sudo ov agent install --machine-key %s --app %s --env %s --user %s --enable\n", key, app, env, user)
}
