// SPDX-License-Identifier: Apache-2.0

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/opaquevault/opaquevault/internal/mcp/sandbox"
)

// MCPHelper is the executable that serves `ov mcp serve`: ov itself does not link the MCP SDK (its
// package initialisation would slow every `ov run`), so it execs MCPHelper from its own directory,
// else from PATH, with the same arguments.
const MCPHelper = "ov-mcp"

// MCPServeConfig is a parsed `ov mcp serve` for the server that ov-mcp links in.
type MCPServeConfig struct {
	App, Env      string
	AllowCommands []string
	AllowWrites   bool
	Unisolated    bool // --allow-unisolated-commands
	ApproveTTY    bool // --approve tty
	MaxOutput     int
	Debug         bool
	Hide          []string // paths the commands must not see (the config file given with --config among them)
	In            io.Reader
	Out           io.Writer
}

// mcpServer serves MCP in this process; nil in ov, set by MainMCP in ov-mcp.
var mcpServer func(context.Context, *MCPServeConfig) error

// MainMCP is Main for the ov-mcp executable: `mcp serve` runs serve in this process.
func MainMCP(ctx context.Context, args []string, stdio Stdio, serve func(context.Context, *MCPServeConfig) error) int {
	mcpServer = serve
	return Main(ctx, args, stdio)
}

// MCPUsageError marks err as a usage error (exit 2) with hints, for the MCP server's own checks.
func MCPUsageError(err error, hints ...string) error { return withCode(ExitUsage, err, hints...) }

func (a *App) mcpServe(ctx context.Context, args []string) error {
	a.daemon.Store(true)
	fs := a.flags()
	app := fs.String("app", "", "limit the tools to this app (and their default)")
	env := fs.String("env", "", "limit the tools to this env of --app (and their default)")
	allow := fs.StringArray("allow-command", nil, "only run command lines matching PATTERN, * matching anything (repeatable); without it, any program but shells and interpreters")
	approve := fs.String("approve", "none", "tty: confirm each call that injects or writes secrets on the controlling terminal; none: do not ask")
	writes := fs.Bool("allow-writes", false, "let set_secret_from_generator create and rotate secrets")
	unisolated := fs.Bool("allow-unisolated-commands", false, "run commands even where they cannot be isolated from the agent (they could then read any secret)")
	maxOut := fs.Int("max-output", 64<<10, "bytes of each output stream returned to the assistant")
	if err := a.parseNone(fs, args); err != nil {
		return err
	}
	if a.g.JSON {
		return usageErr("mcp serve speaks JSON-RPC on stdout; --json does not apply")
	}
	if *env != "" && *app == "" {
		return usageErr("--env needs --app")
	}
	if err := checkScopeFlags(*app, *env); err != nil {
		return err
	}
	if *approve != "none" && *approve != "tty" {
		return usageErr(fmt.Sprintf("--approve %q: want tty or none", *approve))
	}
	if mcpServer == nil {
		return a.execMCPHelper(args)
	}
	in, out := a.io.In, a.io.Out
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		a.warnf("mcp serve waits for an MCP client on stdin; register it with your assistant, for example: claude mcp add opaquevault -- ov mcp serve")
	}
	err := mcpServer(ctx, &MCPServeConfig{
		App: *app, Env: *env, AllowCommands: *allow, AllowWrites: *writes, Unisolated: *unisolated,
		ApproveTTY: *approve == "tty", MaxOutput: *maxOut, Debug: a.g.Debug, Hide: sandbox.Paths(a.env, a.g.Config), In: in, Out: out,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		var ce *codedError
		if errors.As(err, &ce) {
			return err
		}
		return fmt.Errorf("mcp: %w", err)
	}
	return err
}

// execMCPHelper replaces ov with ov-mcp, passing the global flags and `mcp serve ARGS`.
func (a *App) execMCPHelper(args []string) error {
	helper, err := findMCPHelper(os.Executable, exec.LookPath)
	if err != nil {
		return withCode(ExitFailure, err, "ov mcp serve runs the ov-mcp helper, shipped with ov: reinstall the opaquevault package, or put ov-mcp next to ov or in PATH")
	}
	if a.io.In != io.Reader(os.Stdin) || a.io.Out != io.Writer(os.Stdout) || a.io.Err != io.Writer(os.Stderr) {
		return errors.New("mcp serve: run ov-mcp: needs the process's own standard streams")
	}
	argv := []string{helper}
	if a.g.Server != "" {
		argv = append(argv, "--server="+a.g.Server)
	}
	if a.g.Config != "" {
		argv = append(argv, "--config="+a.g.Config)
	}
	if a.g.Debug {
		argv = append(argv, "--debug")
	}
	argv = append(append(argv, "mcp", "serve"), args...)
	restoreTerminal()
	if err := syscall.Exec(helper, argv, os.Environ()); err != nil {
		return fmt.Errorf("mcp serve: run %s: %w", helper, err)
	}
	return nil
}

// findMCPHelper returns ov-mcp from the directory of the running executable (its real path), else
// from PATH.
func findMCPHelper(self func() (string, error), lookPath func(string) (string, error)) (string, error) {
	var tried []string
	if exe, err := self(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		p := filepath.Join(filepath.Dir(exe), MCPHelper)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
		tried = append(tried, filepath.Dir(exe))
	}
	if p, err := lookPath(MCPHelper); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("mcp serve: find %s: not in %s", MCPHelper, joinOr(tried))
}

func joinOr(s []string) string {
	if len(s) == 2 {
		return s[0] + " nor in " + s[1]
	}
	return s[len(s)-1]
}
