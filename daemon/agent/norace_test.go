// SPDX-License-Identifier: Apache-2.0

//go:build linux && !race

package agent_test

const raceBuild = false
