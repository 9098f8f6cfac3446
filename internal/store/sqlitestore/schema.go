// SPDX-License-Identifier: Apache-2.0

package sqlitestore

// migrations is the numbered schema history: migrations[i] brings the schema from version i to
// version i+1. Entries are only ever appended; an applied entry never changes.
var migrations = [][]string{
	// 1: the initial schema.
	{
		`CREATE TABLE meta (
			key   TEXT PRIMARY KEY,
			value BLOB NOT NULL
		)`,
		`CREATE TABLE accounts (
			id                BLOB PRIMARY KEY,
			email             TEXT NOT NULL UNIQUE,
			kdf_t             INTEGER NOT NULL,
			kdf_m             INTEGER NOT NULL,
			kdf_p             INTEGER NOT NULL,
			kdf_salt          BLOB NOT NULL,
			wrapped_ak        BLOB NOT NULL,
			ak_version        INTEGER NOT NULL,
			key_check         BLOB NOT NULL,
			login_verifier    BLOB NOT NULL,
			wrapped_sign_seed BLOB NOT NULL,
			sign_pub          BLOB NOT NULL,
			created_at        INTEGER NOT NULL,
			updated_at        INTEGER NOT NULL
		)`,
		`CREATE TABLE devices (
			key_id       BLOB PRIMARY KEY,
			account_id   BLOB NOT NULL REFERENCES accounts(id),
			verifier     BLOB NOT NULL,
			name         TEXT NOT NULL,
			created_at   INTEGER NOT NULL,
			last_used_at INTEGER,
			revoked_at   INTEGER
		)`,
		`CREATE INDEX devices_account ON devices(account_id)`,
		`CREATE TABLE apps (
			id         BLOB PRIMARY KEY,
			account_id BLOB NOT NULL REFERENCES accounts(id),
			name       TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			UNIQUE (account_id, name)
		)`,
		`CREATE TABLE envs (
			id           BLOB PRIMARY KEY,
			app_id       BLOB NOT NULL REFERENCES apps(id),
			name         TEXT NOT NULL,
			epoch        INTEGER NOT NULL,
			seq          INTEGER NOT NULL DEFAULT 0,
			manifest     BLOB,
			manifest_sig BLOB,
			record_count INTEGER NOT NULL DEFAULT 0,
			created_at   INTEGER NOT NULL,
			updated_at   INTEGER NOT NULL,
			UNIQUE (app_id, name)
		)`,
		`CREATE TABLE env_keys (
			env_id     BLOB NOT NULL REFERENCES envs(id),
			epoch      INTEGER NOT NULL,
			wrapped_ek BLOB NOT NULL,
			created_at INTEGER NOT NULL,
			PRIMARY KEY (env_id, epoch)
		)`,
		`CREATE TABLE records (
			env_id  BLOB NOT NULL REFERENCES envs(id),
			blind   BLOB NOT NULL,
			version INTEGER NOT NULL,
			hash    BLOB NOT NULL,
			record  BLOB NOT NULL,
			PRIMARY KEY (env_id, blind)
		)`,
		`CREATE TABLE machines (
			id           BLOB PRIMARY KEY,
			account_id   BLOB NOT NULL REFERENCES accounts(id),
			verifier     BLOB NOT NULL,
			x_pub        BLOB NOT NULL,
			grant_bytes  BLOB NOT NULL,
			grant_sig    BLOB NOT NULL,
			pin_sign_pub BLOB NOT NULL,
			pin_mac      BLOB NOT NULL,
			not_after    INTEGER,
			label        TEXT NOT NULL,
			account_wrap BLOB,
			ak_version   INTEGER NOT NULL,
			created_at   INTEGER NOT NULL,
			last_seen_at INTEGER
		)`,
		`CREATE INDEX machines_account ON machines(account_id)`,
		`CREATE TABLE machine_wraps (
			machine_id BLOB NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
			app_id     BLOB NOT NULL,
			env_id     BLOB NOT NULL REFERENCES envs(id),
			epoch      INTEGER NOT NULL,
			wrap       BLOB NOT NULL,
			PRIMARY KEY (machine_id, env_id, epoch)
		)`,
		`CREATE INDEX machine_wraps_env ON machine_wraps(env_id)`,
		`CREATE TABLE audit (
			id          INTEGER PRIMARY KEY AUTOINCREMENT,
			account_id  BLOB,
			at          INTEGER NOT NULL,
			actor       TEXT NOT NULL,
			action      TEXT NOT NULL,
			target      TEXT NOT NULL,
			remote_addr TEXT NOT NULL,
			result      TEXT NOT NULL
		)`,
		`CREATE INDEX audit_account ON audit(account_id, id)`,
		`CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
			BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
		`CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
			BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END`,
	},
	// 2: statements signed by an account that the server keeps and serves (crypto.md §2.8).
	{
		`CREATE TABLE signed_objects (
			account_id BLOB NOT NULL REFERENCES accounts(id),
			kind       TEXT NOT NULL,
			key        TEXT NOT NULL,
			version    INTEGER NOT NULL,
			raw        BLOB NOT NULL,
			sig        BLOB NOT NULL,
			updated_at INTEGER NOT NULL,
			PRIMARY KEY (account_id, kind, key)
		)`,
	},
	// 3: invite codes (their verifiers) for --registration invite.
	{
		`CREATE TABLE invites (
			id         BLOB PRIMARY KEY,
			verifier   BLOB NOT NULL UNIQUE,
			note       TEXT NOT NULL,
			created_at INTEGER NOT NULL,
			expires_at INTEGER,
			used_at    INTEGER,
			used_by    BLOB REFERENCES accounts(id),
			revoked_at INTEGER
		)`,
	},
	// 4: history: every signed manifest with its writer, and the sealed records of past versions
	// (docs/history-and-audit.md). What the environment holds now is copied in as its first entry.
	{
		`CREATE TABLE manifest_history (
			env_id       BLOB NOT NULL REFERENCES envs(id),
			seq          INTEGER NOT NULL,
			manifest     BLOB NOT NULL,
			manifest_sig BLOB NOT NULL,
			actor        TEXT NOT NULL,
			at           INTEGER NOT NULL,
			PRIMARY KEY (env_id, seq)
		)`,
		`CREATE TABLE record_history (
			env_id  BLOB NOT NULL REFERENCES envs(id),
			hash    BLOB NOT NULL,
			blind   BLOB NOT NULL,
			version INTEGER NOT NULL,
			record  BLOB NOT NULL,
			PRIMARY KEY (env_id, hash)
		)`,
		`CREATE INDEX record_history_blind ON record_history(env_id, blind, version)`,
		`INSERT INTO manifest_history (env_id, seq, manifest, manifest_sig, actor, at)
			SELECT id, seq, manifest, manifest_sig, '', updated_at FROM envs WHERE seq > 0 AND manifest IS NOT NULL`,
		`INSERT INTO record_history (env_id, hash, blind, version, record)
			SELECT env_id, hash, blind, version, record FROM records`,
	},
	// 5: the change log of the change feed (feed.go): triggers record, for every committed change to
	// a row that a server instance may answer from memory, what changed ("e" environment, "m"
	// machine, "a" account, and its id) under a sequence number that grows with every change. One
	// row per thing, so the log never grows past the things it names. Triggers, so that no write
	// path (present, future, an older ov-server, or an operator's SQL) can forget. Not recorded: the
	// audit log, history, invites, devices (never answered from memory) and last-seen touches. A
	// new column of machines must be added to its UPDATE OF list in a new migration.
	append([]string{
		`CREATE TABLE change_counter (
			id INTEGER PRIMARY KEY CHECK (id = 0),
			n  INTEGER NOT NULL
		)`,
		`INSERT INTO change_counter (id, n) VALUES (0, 0)`,
		`CREATE TABLE changes (
			kind TEXT NOT NULL,
			id   BLOB NOT NULL,
			seq  INTEGER NOT NULL,
			PRIMARY KEY (kind, id)
		) WITHOUT ROWID`,
		`CREATE INDEX changes_seq ON changes(seq)`,
	},
		changeTriggers([]changeSource{
			{table: "envs", kind: "e", id: "id"},
			{table: "env_keys", kind: "e", id: "env_id"},
			{table: "records", kind: "e", id: "env_id"},
			{table: "machines", kind: "m", id: "id", updateOf: "id, account_id, verifier, x_pub, grant_bytes, grant_sig, pin_sign_pub, pin_mac, not_after, label, account_wrap, ak_version, created_at"},
			{table: "machine_wraps", kind: "m", id: "machine_id"},
			{table: "apps", kind: "a", id: "account_id"},
			{table: "signed_objects", kind: "a", id: "account_id"},
			{table: "accounts", kind: "a", id: "id"},
		})...),
}

// changeSource is a table whose changes the log of migration 5 records: as kind, the id column.
// updateOf, when set, limits the UPDATE trigger to those columns.
type changeSource struct{ table, kind, id, updateOf string }

// changeTriggers returns the triggers of migration 5: on insert the new row's id, on delete the
// old row's, on update both.
func changeTriggers(srcs []changeSource) []string {
	var out []string
	record := func(kind, ref string) string {
		return `UPDATE change_counter SET n = n + 1;
			INSERT INTO changes (kind, id, seq) VALUES ('` + kind + `', ` + ref + `, (SELECT n FROM change_counter))
				ON CONFLICT (kind, id) DO UPDATE SET seq = excluded.seq;`
	}
	for _, c := range srcs {
		update := "UPDATE"
		if c.updateOf != "" {
			update = "UPDATE OF " + c.updateOf
		}
		out = append(out,
			`CREATE TRIGGER changes_`+c.table+`_insert AFTER INSERT ON `+c.table+` BEGIN `+record(c.kind, "NEW."+c.id)+` END`,
			`CREATE TRIGGER changes_`+c.table+`_delete AFTER DELETE ON `+c.table+` BEGIN `+record(c.kind, "OLD."+c.id)+` END`,
			`CREATE TRIGGER changes_`+c.table+`_update AFTER `+update+` ON `+c.table+` BEGIN `+record(c.kind, "OLD."+c.id)+record(c.kind, "NEW."+c.id)+` END`,
		)
	}
	return out
}
