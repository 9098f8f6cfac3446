// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"fmt"
)

func (a *App) authDevices(ctx context.Context, args []string) error {
	fs := a.flags()
	passwordNotNeeded(fs)
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	cfg, cl, err := a.loggedInClient()
	if err != nil {
		return err
	}
	defer cfg.wipe()
	list, err := cl.Devices(ctx)
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	if a.g.JSON {
		return a.printJSON(list)
	}
	for _, d := range list.Devices {
		state := "active"
		if d.RevokedAt != nil {
			state = "revoked " + d.RevokedAt.UTC().Format("2006-01-02")
		} else if d.LastUsedAt != nil {
			state = "last used " + d.LastUsedAt.UTC().Format("2006-01-02 15:04")
		}
		cur := ""
		if d.Current {
			cur = "  (this device)"
		}
		fmt.Fprintf(a.io.Out, "%s  %-24s  added %s, %s%s\n", d.KeyID, d.Name, d.CreatedAt.UTC().Format("2006-01-02"), state, cur)
	}
	return nil
}

func (a *App) authDevicesRevoke(ctx context.Context, args []string) error {
	fs := a.flags()
	passwordNotNeeded(fs)
	ids, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usageErr("name the devices to revoke", "`ov auth devices` lists them")
	}
	cfg, cl, err := a.loggedInClient()
	if err != nil {
		return err
	}
	defer cfg.wipe()
	for _, id := range ids {
		if id == cfg.DeviceKeyID {
			return usageErr("that is this device", "use `ov auth logout` to revoke this device's key")
		}
		if err := cl.RevokeDevice(ctx, id); err != nil {
			return fmt.Errorf("revoke device %s: %w", id, err)
		}
		fmt.Fprintf(a.io.Out, "✗ device %s revoked\n", id)
	}
	return nil
}
