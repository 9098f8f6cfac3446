// SPDX-License-Identifier: Apache-2.0

package polkit

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// RestartRulesFile is the installed name of the rule that lets the agent restart units
// (/etc/polkit-1/rules.d/).
const RestartRulesFile = "60-opaquevault-agent-restart.rules"

// safeDir is what a policy directory may be in the rule: an absolute path of plain characters.
var safeDir = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9_./-]*$`) })

// RestartRules returns the polkit rule (JavaScript) that lets user, the agent's User=, call
// systemd's TryRestartUnit and ReloadOrTryRestartUnit (action org.freedesktop.systemd1.manage-units,
// verbs "try-restart" and "reload-or-try-restart") on a unit NAME.service only when dir holds a
// restart policy NAME.service.conf for it. Anything else is left to the other rules (for the
// agent's user: denied). polkitd runs the rule as its own user, with /usr/bin/test for the check.
func RestartRules(user, dir string) ([]byte, error) {
	if len(user) > 32 || !userName().MatchString(user) {
		return nil, fmt.Errorf("render polkit restart rule: user name %q not allowed", user)
	}
	if !safeDir().MatchString(dir) || filepath.Clean(dir) != dir || strings.Contains(dir, "..") {
		return nil, fmt.Errorf("render polkit restart rule: directory %q not allowed", dir)
	}
	r := strings.NewReplacer("@USER@", strconv.Quote(user), "@DIR@", strconv.Quote(dir+"/"))
	return []byte(r.Replace(restartRules)), nil
}

const restartRules = `// Written by ov agent install. The OpaqueVault agent runs as @USER@ and may ask systemd to
// try-restart or try-reload-or-restart a unit only when that unit has a root-owned restart policy
// in @DIR@ (docs/agent.md, "Restarts when a secret changes"). Nothing else is granted.
polkit.addRule(function(action, subject) {
    if (action.id != "org.freedesktop.systemd1.manage-units" || subject.user != @USER@) {
        return polkit.Result.NOT_HANDLED;
    }
    var verb = action.lookup("verb");
    var unit = action.lookup("unit");
    if (verb != "try-restart" && verb != "reload-or-try-restart") {
        return polkit.Result.NOT_HANDLED;
    }
    if (!unit || !/^[A-Za-z0-9:_.@\-]{1,240}\.service$/.test(unit)) {
        return polkit.Result.NOT_HANDLED;
    }
    try {
        polkit.spawn(["/usr/bin/test", "-f", @DIR@ + unit + ".conf"]);
    } catch (error) {
        return polkit.Result.NOT_HANDLED;
    }
    return polkit.Result.YES;
});
`
