// SPDX-License-Identifier: Apache-2.0

package sd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sirupsen/logrus"
)

// NewLogger returns the daemon's logger at level: native journal entries
// when stderr is the journal stream, text on stderr otherwise (see the
// package documentation). Build one in main and pass *logrus.Entry values
// down.
func NewLogger(level logrus.Level) *logrus.Logger {
	l := logrus.New()
	l.SetLevel(level)
	l.SetOutput(os.Stderr)
	l.SetFormatter(TextFormatter())
	if stderrIsJournal() {
		l.SetOutput(discard{})
		l.SetFormatter(nopFormatter{})
		l.AddHook(&journalHook{fallback: TextFormatter()})
	}
	return l
}

// TextFormatter is the formatter used when stderr is not the journal: logfmt
// text, without timestamps when started by systemd ($INVOCATION_ID set).
func TextFormatter() *logrus.TextFormatter {
	return &logrus.TextFormatter{
		DisableTimestamp: UnderSystemd(),
		FullTimestamp:    true,
		DisableColors:    true,
	}
}

// UnderSystemd reports whether this process was started by systemd as a
// unit ($INVOCATION_ID is set).
func UnderSystemd() bool { return os.Getenv("INVOCATION_ID") != "" }

// JournalField turns a logrus field key such as "peer_uid" into the journal
// field name OV_PEER_UID: upper case, characters outside [A-Z0-9_] replaced
// with '_'.
func JournalField(key string) string {
	var b strings.Builder
	b.WriteString("OV_")
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// identifier is SYSLOG_IDENTIFIER of journal entries (`journalctl -t ov`).
var identifier = filepath.Base(os.Args[0])

// journalFields converts an entry's fields for journald.
func journalFields(e *logrus.Entry) map[string]string {
	vars := make(map[string]string, len(e.Data)+1)
	vars["SYSLOG_IDENTIFIER"] = identifier
	for k, v := range e.Data {
		switch x := v.(type) {
		case error:
			vars[JournalField(k)] = x.Error()
		default:
			vars[JournalField(k)] = fmt.Sprint(v)
		}
	}
	return vars
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// nopFormatter keeps logrus from formatting text nobody reads.
type nopFormatter struct{}

func (nopFormatter) Format(*logrus.Entry) ([]byte, error) { return nil, nil }
