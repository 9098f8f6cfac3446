// SPDX-License-Identifier: Apache-2.0

package dotenv

import (
	"strings"

	"github.com/opaquevault/opaquevault/internal/names"
)

// nameKind classifies a variable name.
type nameKind int

const (
	nameInvalid  nameKind = iota
	namePOSIX             // [A-Za-z_][A-Za-z0-9_]*
	nameExtended          // also has "." or "-", or starts with a digit, which dotenv libraries accept
)

// classifyName reports whether name is a POSIX name, an extended one or
// neither. Only the first two may be shown in messages: text that is not a
// name may be part of a value.
func classifyName(name string) nameKind {
	switch {
	case !names.ValidSecret(name):
		return nameInvalid
	case names.Portable(name):
		return namePOSIX
	}
	return nameExtended
}

func isNameStart(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_'
}

// isNameByte reports whether c may appear in a (possibly extended) name.
func isNameByte(c byte) bool { return names.SecretByte(c) }

// dangerousNames are variables that change which code a program loads or how
// it runs, or that systemd sets for the service. Importing one is allowed but
// warned about: it is rarely a secret, and a wrong value breaks or subverts
// every program started with it.
var dangerousNames = map[string]string{
	"PATH":                         "it decides which programs run",
	"LD_PRELOAD":                   "the dynamic loader injects these libraries into every program",
	"LD_LIBRARY_PATH":              "the dynamic loader searches these directories first",
	"LD_AUDIT":                     "the dynamic loader runs these audit libraries",
	"GCONV_PATH":                   "glibc loads character-set modules from here",
	"HOSTALIASES":                  "it redirects host name lookups",
	"LOCALDOMAIN":                  "it changes DNS resolution",
	"RES_OPTIONS":                  "it changes DNS resolution",
	"NLSPATH":                      "it changes where message catalogs are loaded from",
	"MALLOC_CHECK_":                "it changes glibc's allocator",
	"BASH_ENV":                     "bash runs this file on start",
	"ENV":                          "sh runs this file on start",
	"PROMPT_COMMAND":               "bash runs it as a command",
	"PS4":                          "bash expands it, command substitutions included, when tracing",
	"SHELLOPTS":                    "it turns on bash options",
	"BASHOPTS":                     "it turns on bash options",
	"IFS":                          "it changes how shells split words",
	"CDPATH":                       "it changes where shell scripts cd to",
	"GLOBIGNORE":                   "it changes shell globbing",
	"PYTHONPATH":                   "Python imports modules from here first",
	"PYTHONSTARTUP":                "Python runs this file on start",
	"PYTHONHOME":                   "it changes which Python standard library loads",
	"PYTHONWARNINGS":               "it can make Python import modules",
	"PYTHONINSPECT":                "it leaves Python in an interactive prompt",
	"NODE_OPTIONS":                 "it passes flags (such as --require) to every Node.js process",
	"NODE_PATH":                    "Node.js loads modules from here",
	"NODE_TLS_REJECT_UNAUTHORIZED": "it can turn off TLS certificate checks",
	"PERL5OPT":                     "it passes options (such as -M) to every Perl process",
	"PERL5LIB":                     "Perl loads modules from here first",
	"PERLLIB":                      "Perl loads modules from here first",
	"PERL5DB":                      "Perl runs it as debugger code",
	"RUBYOPT":                      "it passes options (such as -r) to every Ruby process",
	"RUBYLIB":                      "Ruby loads libraries from here first",
	"JAVA_TOOL_OPTIONS":            "every JVM applies these options (such as -javaagent)",
	"_JAVA_OPTIONS":                "every JVM applies these options",
	"JDK_JAVA_OPTIONS":             "the java launcher applies these options",
	"CLASSPATH":                    "the JVM loads classes from here",
	"DOTNET_STARTUP_HOOKS":         ".NET loads these assemblies on start",
	"PHPRC":                        "PHP reads its configuration from here",
	"PHP_INI_SCAN_DIR":             "PHP reads extra configuration from here",
	"LUA_INIT":                     "Lua runs it on start",
	"LUA_PATH":                     "Lua loads modules from here",
	"GIT_SSH_COMMAND":              "git runs it as a command",
	"GIT_SSH":                      "git runs it as a program",
	"GIT_EXEC_PATH":                "git runs its helpers from here",
	"GIT_CONFIG_GLOBAL":            "git reads configuration from here",
	"OPENSSL_CONF":                 "OpenSSL loads configuration and engines from here",
	"SSL_CERT_FILE":                "it changes which TLS certificate authorities are trusted",
	"SSL_CERT_DIR":                 "it changes which TLS certificate authorities are trusted",
	"REQUESTS_CA_BUNDLE":           "it changes which TLS certificate authorities are trusted",
	"CURL_CA_BUNDLE":               "it changes which TLS certificate authorities are trusted",
	"NODE_EXTRA_CA_CERTS":          "it changes which TLS certificate authorities are trusted",
	"HTTP_PROXY":                   "it sends HTTP traffic through a proxy",
	"HTTPS_PROXY":                  "it sends HTTPS traffic through a proxy",
	"ALL_PROXY":                    "it sends traffic through a proxy",
	"NO_PROXY":                     "it changes which traffic bypasses the proxy",
	"http_proxy":                   "it sends HTTP traffic through a proxy",
	"https_proxy":                  "it sends HTTPS traffic through a proxy",
	"all_proxy":                    "it sends traffic through a proxy",
	"no_proxy":                     "it changes which traffic bypasses the proxy",
	"EDITOR":                       "programs run it as a command",
	"VISUAL":                       "programs run it as a command",
	"PAGER":                        "programs run it as a command",
	"SHELL":                        "programs run it as the shell",
	"HOME":                         "programs read their configuration from here",
	"TMPDIR":                       "programs write temporary files here",
	"NOTIFY_SOCKET":                "systemd sets it for Type=notify services",
	"LISTEN_FDS":                   "systemd sets it for socket activation",
	"LISTEN_PID":                   "systemd sets it for socket activation",
	"LISTEN_FDNAMES":               "systemd sets it for socket activation",
	"CREDENTIALS_DIRECTORY":        "systemd sets it for LoadCredential=",
	"WATCHDOG_USEC":                "systemd sets it for WatchdogSec=",
	"WATCHDOG_PID":                 "systemd sets it for WatchdogSec=",
	"INVOCATION_ID":                "systemd sets it for every unit",
}

// dangerReason returns why name is dangerous, or "".
func dangerReason(name string) string {
	if r, ok := dangerousNames[name]; ok {
		return r
	}
	switch {
	case strings.HasPrefix(name, "LD_"):
		return "the dynamic loader reads LD_ variables"
	case strings.HasPrefix(name, "DYLD_"):
		return "the macOS dynamic loader reads DYLD_ variables"
	case strings.HasPrefix(name, "BASH_FUNC_"):
		return "bash imports it as a function"
	}
	return ""
}
