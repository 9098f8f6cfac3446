// SPDX-License-Identifier: Apache-2.0

// Package cli implements every `ov` subcommand: flag parsing (pflag), output, messages and exit codes.
//
// stdout carries data only; messages go to stderr as `ov: error: …`, `ov: warning: …` and `ov: hint: …`.
// Secret values are printed only where the user asked for them (`ov secret get`, `ov secret export`,
// `--show-values`), never in an error, a warning or a log line. Passwords come from /dev/tty or a 0600
// file, never from argv or the environment.
//
// The package parses flags, asks, prints and maps errors to exit codes; the protocol is
// internal/remote's and the keys internal/vault's. commands.go is the command table; cmd_<path>.go
// holds the commands of that path (cmd_auth_machine_key.go: `ov auth machine-key …`); errmap.go maps
// errors to exit codes and hints; other files are named for the helper they hold.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"

	"github.com/opaquevault/opaquevault/internal/mcp/sandbox"
	"github.com/opaquevault/opaquevault/internal/secmem"
)

// Stdio is the standard streams of one invocation.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// OSStdio returns the process's standard streams.
func OSStdio() Stdio { return Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// Globals are the flags every command accepts, before or after the subcommand.
type Globals struct {
	Server string
	Config string
	JSON   bool
	Debug  bool
}

// App is one invocation of ov.
type App struct {
	daemon atomic.Bool // a long-running command: signals stop it gracefully, never by exit
	io     Stdio
	g      Globals
	log    *logrus.Logger
	cmd    *command
	env    func(string) string
	goos   string

	intr atomic.Bool // SIGINT or SIGTERM cancelled the command
}

type command struct {
	path     string // "secret import"
	summary  string
	usage    string   // after "ov "
	examples []string // full command lines
	run      func(a *App, ctx context.Context, args []string) error
	hidden   bool
	notes    string // printed after the examples of the command's help
}

var (
	commandsOnce sync.Once
	commandList  []*command
)

// commands returns the command table (commands.go), built on first use.
func commands() []*command {
	commandsOnce.Do(func() { commandList = commandTable() })
	return commandList
}

func findCommand(words []string) (*command, int) {
	var best *command
	n := 0
	for _, c := range commands() {
		p := strings.Fields(c.path)
		if len(p) > len(words) || len(p) <= n {
			continue
		}
		match := true
		for i := range p {
			if p[i] != words[i] {
				match = false
				break
			}
		}
		if match {
			best, n = c, len(p)
		}
	}
	return best, n
}

// Main runs ov with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdio Stdio) int {
	if len(args) > 0 && args[0] == sandbox.HelperArg { // ov mcp serve's command sandbox (internal/mcp/sandbox)
		return sandbox.HelperMain(args[1:])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &App{io: stdio, env: os.Getenv, goos: goosName()}
	done := make(chan struct{})
	defer close(done)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
		case <-done:
			return
		}
		// The first SIGINT/SIGTERM cancels the command. A command blocked where the context does not
		// reach (a terminal prompt, a FIFO without a writer) is ended with 130; daemons drain instead.
		a.intr.Store(true)
		cancel()
		restoreTerminal()
		if a.daemon.Load() {
			return
		}
		select {
		case <-done:
		case <-time.After(300 * time.Millisecond):
			fmt.Fprintln(stdio.Err, "ov: error: interrupted")
			os.Exit(ExitInterrupted)
		}
	}()
	a.log = logrus.New()
	a.log.SetOutput(stdio.Err)
	a.log.SetLevel(logrus.WarnLevel)
	secmem.OnMlockFailure = func(err error) { a.warnf("%v", err) }
	return a.finish(a.dispatch(ctx, args))
}

func (a *App) dispatch(ctx context.Context, args []string) error {
	root := pflag.NewFlagSet("ov", pflag.ContinueOnError)
	root.SetInterspersed(false)
	root.SetOutput(io.Discard)
	a.addGlobals(root)
	var showVersion bool
	root.BoolVar(&showVersion, "version", false, "print the version")
	help := root.BoolP("help", "h", false, "show help")
	if err := root.Parse(args); err != nil {
		return usageErr(err.Error())
	}
	a.applyDebug()
	rest := root.Args()
	if showVersion {
		return a.printVersion()
	}
	if *help || len(rest) == 0 {
		a.printHelp(a.io.Out)
		if len(rest) == 0 && !*help {
			return usageErr("no command given")
		}
		return nil
	}
	if rest[0] == "help" {
		return a.help(rest[1:])
	}
	c, n := findCommand(rest)
	if c == nil {
		if group := groupOf(rest[0]); group != "" {
			a.printGroupHelp(a.io.Err, group)
			if len(rest) > 1 && !strings.HasPrefix(rest[1], "-") {
				return usageErr(fmt.Sprintf("unknown command \"ov %s %s\"", rest[0], rest[1]))
			}
			if len(rest) > 1 && (rest[1] == "-h" || rest[1] == "--help") {
				return nil
			}
			return usageErr(fmt.Sprintf("\"ov %s\" needs a subcommand", rest[0]))
		}
		return usageErr(fmt.Sprintf("unknown command %q", rest[0]), "run `ov --help` for the list of commands")
	}
	a.cmd = c
	return c.run(a, ctx, rest[n:])
}

// help is `ov help [COMMAND]`: the global help, a group's commands (`ov help auth`) or a command's
// help (`ov help secret list`, as `ov secret list --help`). An unknown command is a usage error.
func (a *App) help(words []string) error {
	if len(words) == 0 {
		a.printHelp(a.io.Out)
		return nil
	}
	if c, n := findCommand(words); c != nil && n == len(words) {
		a.cmd = c
		a.printCommandHelp(a.io.Out, c, nil)
		return nil
	}
	if group := strings.Join(words, " "); groupOf(group) != "" {
		a.printGroupHelp(a.io.Out, group)
		return nil
	}
	if len(words) == 1 {
		return usageErr(fmt.Sprintf("unknown command %q", words[0]), "run `ov --help` for the list of commands")
	}
	return usageErr(fmt.Sprintf("unknown command \"ov %s\"", strings.Join(words, " ")), "run `ov --help` for the list of commands")
}

func groupOf(word string) string {
	for _, c := range commands() {
		if strings.HasPrefix(c.path, word+" ") {
			return word
		}
	}
	return ""
}

func (a *App) addGlobals(fs *pflag.FlagSet) {
	fs.StringVar(&a.g.Server, "server", a.g.Server, "server URL (default: $OV_SERVER, then the config)")
	fs.StringVar(&a.g.Config, "config", a.g.Config, "config file (default: $XDG_CONFIG_HOME/ov/config or ~/.config/ov/config)")
	fs.BoolVar(&a.g.JSON, "json", a.g.JSON, "print data as JSON")
	fs.BoolVar(&a.g.Debug, "debug", a.g.Debug, "print debug logs on stderr")
}

func (a *App) applyDebug() {
	if a.g.Debug {
		a.log.SetLevel(logrus.DebugLevel)
	}
}

// flags returns the flag set of the running command, with the global flags added.
func (a *App) flags() *pflag.FlagSet {
	fs := pflag.NewFlagSet("ov "+a.cmd.path, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	return fs
}

var errHelpShown = errors.New("help shown")

// parse parses the command's flags (plus the globals) and handles --help.
func (a *App) parse(fs *pflag.FlagSet, args []string) ([]string, error) {
	a.addGlobals(fs)
	help := fs.BoolP("help", "h", false, "show this help")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			a.printCommandHelp(a.io.Out, a.cmd, fs)
			return nil, errHelpShown
		}
		return nil, usageErr(err.Error(), fmt.Sprintf("run `ov %s --help` for its flags", a.cmd.path))
	}
	a.applyDebug()
	if *help {
		a.printCommandHelp(a.io.Out, a.cmd, fs)
		return nil, errHelpShown
	}
	return fs.Args(), nil
}

// parseNone parses the command's flags and refuses positional arguments.
func (a *App) parseNone(fs *pflag.FlagSet, args []string) error {
	rest, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	return a.noArgs(rest)
}

// noArgs refuses positional arguments.
func (a *App) noArgs(args []string) error {
	if len(args) > 0 {
		return usageErr(fmt.Sprintf("unexpected argument %q", args[0]), "usage: ov "+a.cmd.usage)
	}
	return nil
}

func (a *App) printHelp(w io.Writer) {
	fmt.Fprintf(w, "ov: OpaqueVault, a zero-knowledge secrets manager for Linux services\n\nUsage:\n  ov [global flags] COMMAND [flags] [args]\n")
	printCommandGroups(w)
	fmt.Fprintf(w, "\nGlobal flags (before or after the command):\n")
	fs := pflag.NewFlagSet("ov", pflag.ContinueOnError)
	(&App{}).addGlobals(fs)
	fs.BoolP("help", "h", false, "show help")
	fs.Bool("version", false, "print the version")
	fmt.Fprint(w, flagUsages(fs))
	fmt.Fprintf(w, "\nExamples:\n  ov auth register --server https://vault.example.com --email you@example.com\n  ov secret import .env --app myapp --env production\n  ov run --app myapp --env production -- ./server\n\nRun `ov help COMMAND` or `ov COMMAND --help` for a command's flags. Exit codes: 0 ok, 1 failure, 2 usage, 3 locked or not logged in,\n4 denied, 5 not found, 10 server or agent unreachable, 11 credentials rejected, 130 interrupted; treat unknown codes as failure.\n")
}

func (a *App) printGroupHelp(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: ov %s COMMAND\n\nCommands:\n", group)
	for _, c := range visible() {
		if strings.HasPrefix(c.path, group+" ") {
			fmt.Fprintf(w, "  ov %-28s %s\n", c.path, c.summary)
		}
	}
}

func (a *App) printCommandHelp(w io.Writer, c *command, fs *pflag.FlagSet) {
	if fs == nil {
		// Build the flag set by running the command's flag definitions with --help.
		sub := &App{io: Stdio{In: strings.NewReader(""), Out: w, Err: io.Discard}, cmd: c, env: func(string) string { return "" }, log: a.log, goos: a.goos}
		_ = c.run(sub, context.Background(), []string{"--help"})
		return
	}
	fmt.Fprintf(w, "%s\n\nUsage:\n  ov %s\n", c.summary, c.usage)
	fmt.Fprintf(w, "\nFlags:\n%s", flagUsages(fs))
	if len(c.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if c.notes != "" {
		fmt.Fprintf(w, "\n%s\n", c.notes)
	}
}

func visible() []*command {
	var cs []*command
	for _, c := range commands() {
		if !c.hidden {
			cs = append(cs, c)
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].path < cs[j].path })
	return cs
}

func goosName() string { return runtimeGOOS }

// Messages on stderr, following age's rules: lowercase, no final period.

func (a *App) warnf(format string, args ...any) {
	fmt.Fprintf(a.io.Err, "ov: warning: "+format+"\n", args...)
}

func (a *App) hintf(format string, args ...any) {
	fmt.Fprintf(a.io.Err, "ov: hint: "+format+"\n", args...)
}
