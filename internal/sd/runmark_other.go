// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package sd

// RunStarted does nothing here and reports false.
func RunStarted(app, env, program string, secrets int) bool { return false }
