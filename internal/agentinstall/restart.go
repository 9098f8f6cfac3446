// SPDX-License-Identifier: Apache-2.0

package agentinstall

// Restarts when a secret changes (docs/agent.md): the agent, as its unprivileged User=, asks systemd
// over D-Bus to restart the units that have a root-owned policy in RestartDir. systemd asks polkit;
// Install writes the rule (polkit.RestartRules) that allows exactly that to the agent's user.
const (
	// RestartDir holds the restart policies, UNIT.conf (root-owned, created by the administrator).
	RestartDir = "/etc/ov/restart.d"
	// PolkitRulesDir is where polkitd reads local rules.
	PolkitRulesDir = "/etc/polkit-1/rules.d"
)
