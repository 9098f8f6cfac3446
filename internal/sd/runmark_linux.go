// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd

import (
	"strconv"

	"github.com/coreos/go-systemd/v22/journal"
)

// RunStarted writes the [RunStartEvent] journal entry when stderr is the journal (a unit's
// process), and reports whether it did. Elsewhere (a terminal) it does nothing.
func RunStarted(app, env, program string, secrets int) bool {
	if !stderrIsJournal() {
		return false
	}
	err := journal.Send("ov run: starting "+program+" with "+strconv.Itoa(secrets)+" secret(s) of "+app+"/"+env+" from the vault", journal.PriInfo, map[string]string{
		"SYSLOG_IDENTIFIER": "ov",
		"OV_EVENT":          RunStartEvent,
		"OV_APP":            app,
		"OV_ENV":            env,
		"OV_PROGRAM":        program,
		"OV_SECRETS":        strconv.Itoa(secrets),
	})
	return err == nil
}
