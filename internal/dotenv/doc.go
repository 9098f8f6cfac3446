// SPDX-License-Identifier: Apache-2.0

// Package dotenv reads and writes the files that services keep their
// environment in: dotenv files (.env), systemd EnvironmentFile= files, docker
// --env-file files and flat JSON objects. It exists so that `ov secret import`
// takes exactly the values a service saw, and `ov secret export` writes files
// that read back to the same values.
//
// The package never logs, and never puts a value in an error, a warning or a
// panic: messages name the file, line, column and, where it is known to be
// one, the variable name. Values are []byte so that callers can wipe them
// (see [Result.Wipe]); wiping is best effort under Go's garbage collector.
//
// # The dotenv dialect
//
// [Parse] with the [Dotenv] format reads what the mainstream dotenv libraries
// (Node's dotenv, godotenv, compose-go, python-dotenv, Ruby dotenv) agree on,
// and where they disagree it picks one reading and adds a [Warning] to the
// line, so that nothing changes meaning silently. In short:
//
//   - KEY=VALUE per line, an optional "export " prefix, blanks around "=" and
//     around the value, a UTF-8 byte order mark, LF, CRLF or CR line ends.
//   - Names match [A-Za-z_][A-Za-z0-9_]*; "." and "-" inside a name and a
//     leading digit are accepted with a warning. Any other name is an error.
//   - Lines whose first non-blank character is "#" are comments. After an
//     unquoted value, "#" starts a comment only when a blank precedes it
//     ("a#b" is a value, "a #b" is "a").
//   - Unquoted values are trimmed and taken literally: no escapes.
//   - 'single quotes' are literal; a quote preceded by an odd number of
//     backslashes does not end the value. "double quotes" decode \n \r \t \" \' \\ and \$; any
//     other backslash sequence is kept as written. Both may span lines.
//   - Backticks are not quotes. "$(...)" is never run. ${VAR} and $VAR are
//     kept literally unless [Options.Expand] is set.
//   - The last of duplicate names wins.
//
// docs/dotenv-dialect.md has the full table of rules, which peers agree, and
// the systemd, docker and JSON formats.
//
// # Errors
//
// Any problem refuses the whole file: Parse returns an [ErrorList] of
// [*SyntaxError], each with file, line and column, in line order, and a
// [Result] with the warnings found and no entries. Columns
// count bytes from 1, like the Go compiler's.
package dotenv
