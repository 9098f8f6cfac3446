// SPDX-License-Identifier: Apache-2.0

package pgstore

// migrations is the numbered schema history: migrations[i] brings the schema from version i to
// version i+1. Entries are only ever appended; an applied entry never changes. Keep them additive
// (new tables, new nullable or defaulted columns): instances of the previous version keep serving
// the same database during a rolling upgrade. Every statement of
// one version runs in one transaction (PostgreSQL's DDL is transactional), under the migration
// lock, so a half-applied version never exists.
//
// Names are COLLATE "C" so that lists sort byte for byte, as SQLite's BINARY does; bytea compares
// byte for byte already. Times are timestamptz (microseconds); NULL means "never".
var migrations = [][]string{
	// 1: the initial schema, the same tables as sqlitestore's.
	{
		`CREATE TABLE meta (
			key   text PRIMARY KEY,
			value bytea NOT NULL
		)`,
		`CREATE TABLE accounts (
			id                bytea PRIMARY KEY,
			email             text COLLATE "C" NOT NULL UNIQUE,
			kdf_t             bigint NOT NULL,
			kdf_m             bigint NOT NULL,
			kdf_p             smallint NOT NULL,
			kdf_salt          bytea NOT NULL,
			wrapped_ak        bytea NOT NULL,
			ak_version        bigint NOT NULL,
			key_check         bytea NOT NULL,
			login_verifier    bytea NOT NULL,
			wrapped_sign_seed bytea NOT NULL,
			sign_pub          bytea NOT NULL,
			created_at        timestamptz NOT NULL,
			updated_at        timestamptz NOT NULL
		)`,
		`CREATE TABLE devices (
			key_id       bytea PRIMARY KEY,
			account_id   bytea NOT NULL REFERENCES accounts(id),
			verifier     bytea NOT NULL,
			name         text NOT NULL,
			created_at   timestamptz NOT NULL,
			last_used_at timestamptz,
			revoked_at   timestamptz
		)`,
		`CREATE INDEX devices_account ON devices(account_id)`,
		`CREATE TABLE apps (
			id         bytea PRIMARY KEY,
			account_id bytea NOT NULL REFERENCES accounts(id),
			name       text COLLATE "C" NOT NULL,
			created_at timestamptz NOT NULL,
			UNIQUE (account_id, name)
		)`,
		`CREATE TABLE envs (
			id           bytea PRIMARY KEY,
			app_id       bytea NOT NULL REFERENCES apps(id),
			name         text COLLATE "C" NOT NULL,
			epoch        bigint NOT NULL,
			seq          bigint NOT NULL DEFAULT 0,
			manifest     bytea,
			manifest_sig bytea,
			record_count integer NOT NULL DEFAULT 0,
			created_at   timestamptz NOT NULL,
			updated_at   timestamptz NOT NULL,
			UNIQUE (app_id, name)
		)`,
		`CREATE TABLE env_keys (
			env_id     bytea NOT NULL REFERENCES envs(id),
			epoch      bigint NOT NULL,
			wrapped_ek bytea NOT NULL,
			created_at timestamptz NOT NULL,
			PRIMARY KEY (env_id, epoch)
		)`,
		`CREATE TABLE records (
			env_id  bytea NOT NULL REFERENCES envs(id),
			blind   bytea NOT NULL,
			version bigint NOT NULL,
			hash    bytea NOT NULL,
			record  bytea NOT NULL,
			PRIMARY KEY (env_id, blind)
		)`,
		`CREATE TABLE machines (
			id           bytea PRIMARY KEY,
			account_id   bytea NOT NULL REFERENCES accounts(id),
			verifier     bytea NOT NULL,
			x_pub        bytea NOT NULL,
			grant_bytes  bytea NOT NULL,
			grant_sig    bytea NOT NULL,
			pin_sign_pub bytea NOT NULL,
			pin_mac      bytea NOT NULL,
			not_after    timestamptz,
			label        text NOT NULL,
			account_wrap bytea,
			ak_version   bigint NOT NULL,
			created_at   timestamptz NOT NULL,
			last_seen_at timestamptz
		)`,
		`CREATE INDEX machines_account ON machines(account_id)`,
		`CREATE TABLE machine_wraps (
			machine_id bytea NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
			app_id     bytea NOT NULL,
			env_id     bytea NOT NULL REFERENCES envs(id),
			epoch      bigint NOT NULL,
			wrap       bytea NOT NULL,
			PRIMARY KEY (machine_id, env_id, epoch)
		)`,
		`CREATE INDEX machine_wraps_env ON machine_wraps(env_id)`,
		`CREATE TABLE audit (
			id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			account_id  bytea,
			at          timestamptz NOT NULL,
			actor       text NOT NULL,
			action      text NOT NULL,
			target      text NOT NULL,
			remote_addr text NOT NULL,
			result      text NOT NULL
		)`,
		`CREATE INDEX audit_account ON audit(account_id, id)`,
		`CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$`,
		`CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
			FOR EACH ROW EXECUTE FUNCTION audit_append_only()`,
		`CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
			FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()`,
	},
	// 2: statements signed by an account that the server keeps and serves (crypto.md §2.8), and
	// invite codes (their verifiers) for --registration invite.
	{
		`CREATE TABLE signed_objects (
			account_id bytea NOT NULL REFERENCES accounts(id),
			kind       text COLLATE "C" NOT NULL,
			key        text COLLATE "C" NOT NULL,
			version    bigint NOT NULL,
			raw        bytea NOT NULL,
			sig        bytea NOT NULL,
			updated_at timestamptz NOT NULL,
			PRIMARY KEY (account_id, kind, key)
		)`,
		`CREATE TABLE invites (
			id         bytea PRIMARY KEY,
			verifier   bytea NOT NULL UNIQUE,
			note       text NOT NULL,
			created_at timestamptz NOT NULL,
			expires_at timestamptz,
			used_at    timestamptz,
			used_by    bytea REFERENCES accounts(id),
			revoked_at timestamptz
		)`,
	},
	// 3: history: every signed manifest with its writer, and the sealed records of past versions
	// (docs/history-and-audit.md). What each environment holds now is copied in as its first entry.
	{
		`CREATE TABLE manifest_history (
			env_id       bytea NOT NULL REFERENCES envs(id),
			seq          bigint NOT NULL,
			manifest     bytea NOT NULL,
			manifest_sig bytea NOT NULL,
			actor        text NOT NULL,
			at           timestamptz NOT NULL,
			PRIMARY KEY (env_id, seq)
		)`,
		`CREATE TABLE record_history (
			env_id  bytea NOT NULL REFERENCES envs(id),
			hash    bytea NOT NULL,
			blind   bytea NOT NULL,
			version bigint NOT NULL,
			record  bytea NOT NULL,
			PRIMARY KEY (env_id, hash)
		)`,
		`CREATE INDEX record_history_blind ON record_history(env_id, blind, version)`,
		`INSERT INTO manifest_history (env_id, seq, manifest, manifest_sig, actor, at)
			SELECT id, seq, manifest, manifest_sig, '', updated_at FROM envs WHERE seq > 0 AND manifest IS NOT NULL`,
		`INSERT INTO record_history (env_id, hash, blind, version, record)
			SELECT env_id, hash, blind, version, record FROM records`,
	},
	// 4: change notifications (feed.go): every committed change to a row that a server instance
	// may answer from memory is announced on the channel ov_changes, so that every instance
	// forgets what it holds of it. Triggers, so that no write path (present, future, or an
	// operator's SQL) can forget to announce. The payload is "e:", "m:" or "a:" and the hex id of
	// an environment, a machine or an account; "*" (a TRUNCATE) means everything. NOTIFY is
	// delivered at commit, and duplicates within one transaction are merged. Not announced: the
	// audit log, history, invites, devices (never served from memory), and last-seen touches.
	append([]string{
		`CREATE FUNCTION ov_notify(kind text, id bytea) RETURNS void LANGUAGE sql AS
			$$ SELECT pg_notify('ov_changes', kind || ':' || encode(id, 'hex')) $$`,
		`CREATE FUNCTION ov_changed_all() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN PERFORM pg_notify('ov_changes', '*'); RETURN NULL; END $$`,
	}, changeTriggers([]changeSource{
		{table: "envs", kind: "e", id: "id"},
		{table: "env_keys", kind: "e", id: "env_id"},
		{table: "records", kind: "e", id: "env_id"},
		{table: "machines", kind: "m", id: "id", ignore: "last_seen_at"},
		{table: "machine_wraps", kind: "m", id: "machine_id"},
		{table: "apps", kind: "a", id: "account_id"},
		{table: "signed_objects", kind: "a", id: "account_id"},
		{table: "accounts", kind: "a", id: "id"},
	})...),
}

// changeSource is a table whose changes migration 4 announces: as kind, the id column. An update
// that changes only the column ignore is not announced.
type changeSource struct{ table, kind, id, ignore string }

// changeTriggers returns, per table, the trigger function ov_changed_TABLE (the old row's id on
// update and delete, the new row's on insert and update), its row trigger ov_changed (with
// ignore: ov_changed on insert and delete, ov_changed_update on the other updates) and
// ov_changed_truncate, which announces everything.
func changeTriggers(srcs []changeSource) []string {
	var out []string
	for _, c := range srcs {
		fn := "ov_changed_" + c.table + "()"
		out = append(out, `CREATE FUNCTION `+fn+` RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
			IF TG_OP <> 'INSERT' THEN PERFORM ov_notify('`+c.kind+`', OLD.`+c.id+`); END IF;
			IF TG_OP <> 'DELETE' THEN PERFORM ov_notify('`+c.kind+`', NEW.`+c.id+`); END IF;
			RETURN NULL; END $$`)
		if c.ignore == "" {
			out = append(out, `CREATE TRIGGER ov_changed AFTER INSERT OR UPDATE OR DELETE ON `+c.table+` FOR EACH ROW EXECUTE FUNCTION `+fn)
		} else {
			out = append(out,
				`CREATE TRIGGER ov_changed AFTER INSERT OR DELETE ON `+c.table+` FOR EACH ROW EXECUTE FUNCTION `+fn,
				`CREATE TRIGGER ov_changed_update AFTER UPDATE ON `+c.table+` FOR EACH ROW
			WHEN (to_jsonb(OLD) - '`+c.ignore+`' IS DISTINCT FROM to_jsonb(NEW) - '`+c.ignore+`') EXECUTE FUNCTION `+fn)
		}
		out = append(out, `CREATE TRIGGER ov_changed_truncate AFTER TRUNCATE ON `+c.table+` FOR EACH STATEMENT EXECUTE FUNCTION ov_changed_all()`)
	}
	return out
}
