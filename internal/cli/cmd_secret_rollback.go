// SPDX-License-Identifier: Apache-2.0

package cli

import "context"

// secretRollback is `ov secret rollback NAME --to VERSION`: rollback (history.go) for one secret.
func (a *App) secretRollback(ctx context.Context, args []string) error {
	return a.rollback(ctx, args, true)
}
