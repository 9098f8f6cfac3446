// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd

import (
	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
)

// NewAuditLogger is [NewLogger] for a program that is not a service but
// whose log must reach the journal (`ov mcp serve`, started by an AI
// assistant with stderr going to the assistant's log): text on stderr, and
// every entry also sent to journald when it runs.
func NewAuditLogger(level logrus.Level) *logrus.Logger {
	l := NewLogger(level)
	if !stderrIsJournal() && journal.Enabled() {
		l.AddHook(journalOnly{})
	}
	return l
}

type journalOnly struct{}

func (journalOnly) Levels() []logrus.Level { return logrus.AllLevels }

func (journalOnly) Fire(e *logrus.Entry) error {
	_ = journal.Send(e.Message, priorityOf(e.Level), journalFields(e))
	return nil
}
