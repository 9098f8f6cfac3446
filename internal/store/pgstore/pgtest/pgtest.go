// SPDX-License-Identifier: Apache-2.0

// Package pgtest gives tests a real PostgreSQL server: the one named by $OV_TEST_POSTGRES_DSN
// (scripts/test-postgres.sh starts a throwaway one and prints its DSN), with a new, empty
// database for each caller, dropped when the test ends. Without $OV_TEST_POSTGRES_DSN the test is
// skipped, saying so.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar is the environment variable naming the test server: a postgres:// URL of a role that
// may create databases and roles, without a password (a unix socket with trust, or a passfile).
const EnvVar = "OV_TEST_POSTGRES_DSN"

// AdminDSN returns $OV_TEST_POSTGRES_DSN, or skips the test when it is not set.
func AdminDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvVar)
	if dsn == "" {
		t.Skipf("skipped PostgreSQL: $%s is not set (export %s=$(scripts/test-postgres.sh start))", EnvVar, EnvVar)
	}
	return dsn
}

// Exec runs statements on the admin connection (no arguments, so that DDL can be used).
func Exec(t testing.TB, dsn string, stmts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// NewDatabase creates an empty database on the test server and returns its DSN; the database is
// dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminDSN(t)
	name := "ov_test_" + RandomName()
	Exec(t, admin, `CREATE DATABASE `+name)
	t.Cleanup(func() { Exec(t, admin, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	return WithDatabase(t, admin, name)
}

// WithDatabase returns dsn naming database name instead.
func WithDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("$%s does not parse", EnvVar)
	}
	u.Path = "/" + name
	return u.String()
}

// RandomName is 16 random hex digits, usable in an SQL identifier.
func RandomName() string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
