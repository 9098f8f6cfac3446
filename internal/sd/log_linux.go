// SPDX-License-Identifier: Apache-2.0

//go:build linux

package sd

import (
	"os"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/sirupsen/logrus"
)

func stderrIsJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return ok && err == nil
}

// journalHook sends every entry to journald; when journald cannot be
// reached, the entry is written as text to stderr instead of being lost.
type journalHook struct{ fallback logrus.Formatter }

func (*journalHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *journalHook) Fire(e *logrus.Entry) error {
	if err := journal.Send(e.Message, priorityOf(e.Level), journalFields(e)); err != nil {
		if b, ferr := h.fallback.Format(e); ferr == nil {
			_, _ = os.Stderr.Write(b)
		}
	}
	return nil
}

func priorityOf(l logrus.Level) journal.Priority {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel:
		return journal.PriCrit
	case logrus.ErrorLevel:
		return journal.PriErr
	case logrus.WarnLevel:
		return journal.PriWarning
	case logrus.InfoLevel:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}
