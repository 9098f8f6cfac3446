// SPDX-License-Identifier: Apache-2.0

// Package clustertest runs several real ov-server processes on one PostgreSQL database and drives
// them with the real ov CLI: one account served consistently by every instance, writers racing on
// two instances, and an instance killed with SIGKILL in the middle of a stream of commits. The
// test binary plays ov and ov-server (with cheap Argon2id parameters for ov). It needs
// $OV_TEST_POSTGRES_DSN (scripts/test-postgres.sh) and says that it skipped without it.
package clustertest
