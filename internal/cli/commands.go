// SPDX-License-Identifier: Apache-2.0

package cli

// commandTable is every `ov` command, in one place: path, help and the method that runs it. The
// commands' code lives in files named after their path (cmd_auth_machine_key.go for `ov auth
// machine-key …`).
func commandTable() []*command {
	var cs []*command
	register := func(c *command) { cs = append(cs, c) }
	// ov agent … (cmd_agent.go)
	register(&command{
		path:    "agent install",
		summary: "install ov-agent.socket and ov-agent.service for a machine key (as root)",
		usage:   "agent install --machine-key FILE --app APP --env ENV --user USER [--enable] [--root DIR]",
		examples: []string{
			"sudo ov agent install --machine-key /etc/ov/myapp.key --app myapp --env production --user $USER --enable",
			"ov agent install --machine-key /etc/ov/myapp.key --app myapp --env production --user deploy --root ./pkgroot",
		},
		run: (*App).agentInstall,
	})
	register(&command{
		path:     "agent uninstall",
		summary:  "remove the agent's units and rendezvous file (as root)",
		usage:    "agent uninstall [--root DIR]",
		examples: []string{"sudo ov agent uninstall"},
		run:      (*App).agentUninstall,
	})
	register(&command{
		path:     "agent serve",
		summary:  "run the agent (started by ov-agent.socket, or by `ov agent start`)",
		usage:    "agent serve [--app APP --env ENV] [--machine-key-credential NAME] [--user-mode] [--socket PATH]",
		examples: []string{"ov agent serve --app myapp --env production --machine-key-credential ov-machine-key"},
		run:      (*App).agentServe,
	})
	register(&command{
		path:     "agent start",
		summary:  "unlock an agent for this login session (prompts for the master password)",
		usage:    "agent start [--password-file FILE]",
		examples: []string{"ov agent start", "ov agent start --password-file ~/.config/ov/pw   # automation"},
		run:      (*App).agentStart,
	})
	register(&command{
		path:     "agent unlock",
		summary:  "hand the account key to a running agent (prompts for the master password)",
		usage:    "agent unlock [--password-file FILE] [--socket PATH]",
		examples: []string{"ov agent unlock"},
		run:      (*App).agentUnlock,
	})
	register(&command{
		path:     "agent status",
		summary:  "show whether an agent runs, what it holds and how it was found",
		usage:    "agent status [--json] [--socket PATH]",
		examples: []string{"ov agent status", "ov agent status --json"},
		run:      (*App).agentStatus,
	})
	register(&command{
		path:     "agent lock",
		summary:  "make the agent wipe its keys",
		usage:    "agent lock [--socket PATH]",
		examples: []string{"ov agent lock"},
		run:      (*App).agentLock,
	})
	register(&command{
		path:     "agent stop",
		summary:  "lock and stop this user's agent",
		usage:    "agent stop [--socket PATH]",
		examples: []string{"ov agent stop"},
		run:      (*App).agentStop,
	})
	// ov audit (cmd_audit.go)
	register(&command{
		path:    "audit",
		summary: "show your account's audit trail: reads, writes, logins, machine-key use, revocations, failures",
		usage:   "audit [--app APP [--env ENV]] [--since DURATION] [--limit N] [--before ID] [--json]",
		examples: []string{
			"ov audit --since 24h",
			"ov audit --app myapp --env production --json",
			"ov audit --before 1234          # the next (older) page",
		},
		run: (*App).audit,
	})
	// ov auth … (cmd_auth.go)
	register(&command{
		path:    "auth register",
		summary: "create an account on a server and log this device in",
		usage:   "auth register --server URL --email EMAIL [--password-file FILE] [--emergency-kit FILE] [--invite-file FILE]",
		examples: []string{
			"ov auth register --server https://vault.example.com --email you@example.com",
			"ov auth register --server https://vault.example.com --email you@example.com --invite-file ./invite   # a server that needs an invite code",
			"ov auth register --server http://127.0.0.1:8443 --email ci@example.com --password-file ./pw --emergency-kit ./kit.txt",
		},
		run: (*App).authRegister,
	})
	register(&command{
		path:    "auth login",
		summary: "log this device in to an existing account",
		usage:   "auth login [--server URL] [--email EMAIL] [--password-file FILE] [--secret-key-file FILE]",
		examples: []string{
			"ov auth login --server https://vault.example.com --email you@example.com",
			"ov auth login   # again after `ov auth logout`, with the saved server, email and Account Secret Key",
		},
		run: (*App).authLogin,
	})
	register(&command{
		path:     "auth logout",
		summary:  "revoke this device's API key and remove it from the config",
		usage:    "auth logout [--forget]",
		examples: []string{"ov auth logout", "ov auth logout --forget   # also delete the config and its Account Secret Key"},
		run:      (*App).authLogout,
	})
	register(&command{
		path:     "auth status",
		summary:  "show the account, server and device of this config",
		usage:    "auth status [--json]",
		examples: []string{"ov auth status", "ov auth status --json"},
		run:      (*App).authStatus,
	})
	// ov auth devices … (cmd_auth_devices.go)
	register(&command{
		path:     "auth devices",
		summary:  "list the devices logged in to the account",
		usage:    "auth devices [--json]",
		examples: []string{"ov auth devices"},
		run:      (*App).authDevices,
	})
	register(&command{
		path:     "auth devices revoke",
		summary:  "revoke a device's API key (a lost laptop): it is refused at its next request",
		usage:    "auth devices revoke KEY_ID...",
		examples: []string{"ov auth devices revoke 0123456789abcdef"},
		run:      (*App).authDevicesRevoke,
	})
	// ov doctor (cmd_doctor.go)
	register(&command{
		path:    "doctor",
		summary: "check a service's setup against the guide's troubleshooting list, with the fix for each problem",
		usage:   "doctor [--unit UNIT] [--machine-key FILE --app APP --env ENV] [--json]",
		examples: []string{
			"sudo ov doctor --unit myapp.service",
			"ov doctor --machine-key /etc/ov/myapp.key --app myapp --env production",
			"sudo ov doctor --unit myapp.service --json",
		},
		run: (*App).doctor,
	})
	// ov env-from-credentials (cmd_env_from_credentials.go)
	register(&command{
		path:    "env-from-credentials",
		summary: "run a program with the files of $CREDENTIALS_DIRECTORY (LoadCredential=) as environment variables",
		usage:   "env-from-credentials -- PROGRAM [ARGS...]",
		examples: []string{
			"ExecStart=/usr/bin/ov env-from-credentials -- /opt/myapp/bin/server   # with LoadCredential=DATABASE_URL:/run/ov/credentials.sock",
		},
		notes: "For programs that read only environment variables. Each file of $CREDENTIALS_DIRECTORY becomes a\n" +
			"variable of the same name (names that are not valid variable names are skipped with a warning), after the\n" +
			"checks of `ov run --machine-key-credential` (owned by this uid, or by root with an ACL for it; 0400 or 0600;\n" +
			"one link). No network and no key: systemd and the agent's credential provider did the work. Exit status:\n" +
			"the program's own once ov has replaced itself with it; before that 125, or 126/127 as env(1).",
		run: (*App).envFromCredentials,
	})
	// ov secret history, secret rollback, env history, env rollback (cmd_secret_history.go, cmd_secret_rollback.go,
	// cmd_env_history.go, cmd_env_rollback.go; what they share in history.go)
	register(&command{
		path:    "secret history",
		summary: "list every version of a secret: when, who wrote it, and a fingerprint of its value",
		usage:   "secret history NAME --app APP --env ENV [--json] [--show-values]",
		examples: []string{
			"ov secret history DATABASE_URL --app myapp --env production",
			"ov secret history DATABASE_URL --app myapp --env production --show-values   # asks on the terminal first",
		},
		run: (*App).secretHistory,
	})
	register(&command{
		path:     "secret rollback",
		summary:  "write an earlier version of a secret back as its newest version",
		usage:    "secret rollback NAME --to VERSION --app APP --env ENV [--dry-run] [--json]",
		examples: []string{"ov secret rollback DATABASE_URL --to 3 --app myapp --env production"},
		run:      (*App).secretRollback,
	})
	register(&command{
		path:     "env history",
		summary:  "list the manifests of an (app, env): who, when, which names were added, changed or removed",
		usage:    "env history --app APP --env ENV [--json]",
		examples: []string{"ov env history --app myapp --env production"},
		run:      (*App).envHistory,
	})
	register(&command{
		path:    "env rollback",
		summary: "write the state of an (app, env) after manifest SEQ back as one new commit",
		usage:   "env rollback --to SEQ --app APP --env ENV [--dry-run] [--json]",
		examples: []string{
			"ov env rollback --to 12 --app myapp --env production --dry-run   # the names that would change",
			"ov env rollback --to 12 --app myapp --env production",
		},
		run: (*App).envRollback,
	})
	// ov auth derive-machine-key (cmd_auth_derive_machine_key.go), machine-key … (cmd_auth_machine_key.go), change-password (cmd_auth_change_password.go)
	register(&command{
		path:    "auth derive-machine-key",
		summary: "issue a machine key file for unattended `ov run` (scoped with --app/--env)",
		usage:   "auth derive-machine-key --out FILE|- [--app APP --env ENV [--env ENV...]] [--scope APP/ENV...] [--expires DURATION] [--force]",
		examples: []string{
			"ov auth derive-machine-key --app myapp --env production --out /etc/ov/myapp.key",
			"ov auth derive-machine-key --out /etc/ov/myapp.key        # account-wide: opens every app (not recommended)",
			"ov auth derive-machine-key --app myapp --env production --out - | systemd-creds encrypt --name=ov-myapp - /etc/credstore.encrypted/ov-myapp",
			"ov auth derive-machine-key --app myapp --env production --out /etc/ov/myapp.key --force   # replace and revoke the old key",
		},
		run: (*App).deriveMachineKey,
	})
	register(&command{
		path:     "auth machine-key list",
		summary:  "list the machine keys of the account with their scopes",
		usage:    "auth machine-key list [--json]",
		examples: []string{"ov auth machine-key list"},
		run:      (*App).machineKeyList,
	})
	register(&command{
		path:    "auth machine-key revoke",
		summary: "revoke machine keys: at once on the server, and with --rotate by re-keying their envs",
		usage:   "auth machine-key revoke ID... | --all [--rotate]",
		examples: []string{
			"ov auth machine-key revoke 3f2a9c0d1e4b5a697887766554433221",
			"ov auth machine-key revoke 3f2a9c0d1e4b5a697887766554433221 --rotate   # after a compromise",
			"ov auth machine-key revoke --all",
		},
		run: (*App).machineKeyRevoke,
	})
	register(&command{
		path:    "auth change-password",
		summary: "change the master password (re-wraps the account key only)",
		usage:   "auth change-password [--revoke-machine-keys | --keep-machine-keys] [--password-file FILE --new-password-file FILE]",
		examples: []string{
			"ov auth change-password                       # asks whether to revoke the machine keys",
			"ov auth change-password --keep-machine-keys --password-file old.pw --new-password-file new.pw",
		},
		run: (*App).changePassword,
	})
	// ov mcp serve (cmd_mcp.go)
	register(&command{
		path:    "mcp serve",
		summary: "serve MCP on stdio for AI assistants: secret names, and commands run with secrets they never see",
		usage:   "mcp serve [--app APP [--env ENV]] [--allow-command PATTERN...] [--approve tty|none] [--allow-writes] [--max-output BYTES]",
		examples: []string{
			"claude mcp add opaquevault -- ov mcp serve --app myapp --env development",
			"ov mcp serve --app myapp --env development --allow-command 'npm test' --allow-command 'go test *'",
			"ov mcp serve --approve tty --allow-writes   # confirm every injection and write on this terminal",
		},
		run: (*App).mcpServe,
	})
	// ov run (cmd_run.go)
	register(&command{
		path:    "run",
		summary: "run a program with the secrets of an (app, env) in its environment",
		usage:   "run --app APP --env ENV [--secrets NAME,...] [--no-inherit] -- PROGRAM [ARGS...]",
		examples: []string{
			"ov run --app myapp --env production -- /opt/myapp/bin/server",
			"ov run --app myapp --env production --secrets DATABASE_URL,STRIPE_SECRET_KEY -- ./server --port 8080",
			"ov run --app myapp --env production --machine-key /etc/ov/myapp.key -- /opt/myapp/bin/server",
			"ov run --app myapp --env production --machine-key-credential ov-myapp -- /opt/myapp/bin/server   # LoadCredential(Encrypted)=ov-myapp",
			"ov run --app myapp --env production --no-inherit -- /usr/bin/env",
		},
		notes: "Exit status: the program's own once ov has replaced itself with it (same PID, signals, exit status).\n" +
			"Before that: 2 usage, 3 locked or not logged in, 4 denied, 5 no such app, env or secret, 10 server or agent\n" +
			"unreachable, 11 credentials rejected, 130 interrupted, 125 any other failure, 126 the program cannot be\n" +
			"executed, 127 the program is not found (as env(1)).",
		run: (*App).run,
	})
	// ov secret … (cmd_secret.go), app list (cmd_app_list.go), env list (cmd_env_list.go)
	register(&command{
		path:    "secret import",
		summary: "import a .env file into an (app, env), all or nothing",
		usage:   "secret import FILE --app APP --env ENV [--dry-run [--show-values]] [--format dotenv|systemd|docker|json] [--expand] [--overwrite]",
		examples: []string{
			"ov secret import /opt/myapp/.env.production --app myapp --env production",
			"ov secret import .env --app myapp --env dev --dry-run            # what the parser picked up; no server, no login",
			"ov secret import .env --app myapp --env dev --dry-run --json --show-values",
			"ov secret import /etc/myapp/env --format systemd --app myapp --env production",
		},
		run: (*App).secretImport,
	})
	register(&command{
		path:     "secret list",
		summary:  "list the secret names of an (app, env) with their versions",
		usage:    "secret list --app APP --env ENV [--json]",
		examples: []string{"ov secret list --app myapp --env production", "ov secret list --app myapp --env production --json"},
		run:      (*App).secretList,
	})
	register(&command{
		path:    "secret set",
		summary: "set one secret, reading its value from stdin or a no-echo prompt",
		usage:   "secret set NAME --app APP --env ENV [--keep-newline]",
		examples: []string{
			"ov secret set STRIPE_SECRET_KEY --app myapp --env production          # prompts, no echo",
			"printf %s \"$VALUE\" | ov secret set STRIPE_SECRET_KEY --app myapp --env production",
		},
		run: (*App).secretSet,
	})
	register(&command{
		path:     "secret get",
		summary:  "print one secret's value",
		usage:    "secret get NAME --app APP --env ENV [--no-newline] [--json]",
		examples: []string{"ov secret get DATABASE_URL --app myapp --env production"},
		run:      (*App).secretGet,
	})
	register(&command{
		path:     "secret delete",
		summary:  "delete secrets from an (app, env)",
		usage:    "secret delete NAME [NAME...] --app APP --env ENV",
		examples: []string{"ov secret delete OLD_TOKEN --app myapp --env production"},
		run:      (*App).secretDelete,
	})
	register(&command{
		path:    "secret export",
		summary: "write every secret of an (app, env) as dotenv, docker env-file, systemd EnvironmentFile= or JSON",
		usage:   "secret export --app APP --env ENV [--format dotenv|docker|systemd|json] [--out FILE]",
		examples: []string{
			"ov secret export --app myapp --env production --format json",
			"ov secret export --app myapp --env production --out ./backup.env   # a new 0600 file",
		},
		run: (*App).secretExport,
	})
	register(&command{
		path:     "app list",
		summary:  "list apps and their envs",
		usage:    "app list [--json]",
		examples: []string{"ov app list"},
		run:      (*App).appList,
	})
	register(&command{
		path:     "env list",
		summary:  "list the envs of an app",
		usage:    "env list --app APP [--json]",
		examples: []string{"ov env list --app myapp"},
		run:      (*App).envList,
	})
	// ov systemd … (cmd_systemd.go)
	register(&command{
		path:    "systemd cutover",
		summary: "move a unit's EnvironmentFile=/Environment= secrets to ov run, with a drop-in (guide step 4)",
		usage:   "systemd cutover UNIT --app APP --env ENV (--machine-key FILE | --credentials [--files-only] [--machine-key FILE]) [--dry-run] [--root DIR]",
		examples: []string{
			"sudo ov systemd cutover myapp.service --app myapp --env production --machine-key /etc/ov/myapp.key --dry-run",
			"sudo ov systemd cutover myapp.service --app myapp --env production --machine-key /etc/ov/myapp.key",
			"ov systemd cutover myapp.service --app myapp --env production --machine-key /etc/ov/myapp.key --root /srv/image",
			"sudo ov systemd cutover myapp.service --app myapp --env production --credentials --machine-key /etc/ov/myapp.key   # LoadCredential= from the system agent",
		},
		run: (*App).systemdCutover,
	})
	register(&command{
		path:     "systemd rollback",
		summary:  "remove the drop-in of ov systemd cutover and reload systemd",
		usage:    "systemd rollback UNIT [--root DIR]",
		examples: []string{"sudo ov systemd rollback myapp.service"},
		run:      (*App).systemdRollback,
	})
	register(&command{
		path:     "systemd retire-env",
		summary:  "rename a cut-over unit's .env to .env.retired-DATE (0600) once the journal shows it started from the vault (guide step 6)",
		usage:    "systemd retire-env UNIT [--root DIR]",
		examples: []string{"sudo ov systemd retire-env myapp.service"},
		run:      (*App).systemdRetireEnv,
	})
	// ov version (cmd_version.go): hidden from the list, which names it under Other by hand
	register(&command{
		path:     "version",
		summary:  "print the version",
		usage:    "version [--json]",
		examples: []string{"ov version", "ov version --json   # {\"schema_version\":1,\"version\":\"...\"}"},
		run:      (*App).version,
		hidden:   true,
	})
	return cs
}
