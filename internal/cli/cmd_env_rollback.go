// SPDX-License-Identifier: Apache-2.0

package cli

import "context"

// envRollback is `ov env rollback --to SEQ`: rollback (history.go) for the whole (app, env).
func (a *App) envRollback(ctx context.Context, args []string) error {
	return a.rollback(ctx, args, false)
}
