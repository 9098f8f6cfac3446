// SPDX-License-Identifier: Apache-2.0

//go:build linux && race

package agent_test

// raceBuild: the race detector's shadow memory and bookkeeping multiply
// the agent's memory use, so memory bounds are larger under -race.
const raceBuild = true
