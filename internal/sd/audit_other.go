// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package sd

import "github.com/sirupsen/logrus"

// NewAuditLogger is [NewLogger]: there is no journal here.
func NewAuditLogger(level logrus.Level) *logrus.Logger { return NewLogger(level) }
