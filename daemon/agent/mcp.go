// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// mcpAncestor returns the pid of an `ov mcp serve` process that pid descends from (not pid itself),
// or 0. Commands that an AI assistant runs through ov mcp serve must not read values from the agent
// directly: the MCP server injects the values they need and redacts them from what the assistant
// sees, but a command that asked the agent itself would get them unredacted. ov mcp serve makes
// itself a child subreaper, so descendants that daemonize stay in its tree.
//
// When /proc cannot be read (for instance under ProtectProc=invisible) the check cannot tell and
// lets the request through; the MCP server also refuses to run ov itself.
func mcpAncestor(pid int32) int32 {
	p := int(pid)
	for depth := 0; depth < 64 && p > 1; depth++ {
		ppid, err := parentOf(p)
		if err != nil || ppid <= 1 {
			return 0
		}
		if isMCPServer(ppid) {
			return int32(ppid)
		}
		p = ppid
	}
	return 0
}

func parentOf(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return strconv.Atoi(f[1])
}

// isMCPServer reports whether pid's command line is `… ov … mcp serve …`.
func isMCPServer(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "mcp" && args[i+1] == "serve" {
			return true
		}
	}
	return false
}
