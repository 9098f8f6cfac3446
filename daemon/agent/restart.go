// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	ovnames "github.com/opaquevault/opaquevault/internal/names"
)

// DefaultRestartDir holds the restart policies, one file per unit: UNIT.conf.
const DefaultRestartDir = "/etc/ov/restart.d"

// Restart actions.
const (
	RestartAction = "restart" // TryRestartUnit: restart the unit if it runs
	ReloadAction  = "reload"  // ReloadOrTryRestartUnit: reload if the unit can, restart otherwise
)

// Defaults of a policy.
const (
	DefaultRestartInterval = time.Minute
	DefaultRestartTimeout  = 90 * time.Second
)

// RestartPolicy is one root-owned file /etc/ov/restart.d/UNIT.conf:
//
//	app = myapp
//	env = production
//	names = DATABASE_URL, STRIPE_SECRET_KEY   # or * for every name
//	action = restart                          # or reload
//	interval = 1m                             # at most one restart per interval
//	order = 10                                # rolling order: lower goes first
//	timeout = 90s                             # wait this long for the unit to be active again
type RestartPolicy struct {
	Unit     string
	App, Env string
	Names    []string // sorted; empty when All
	All      bool
	Action   string
	Interval time.Duration
	Order    int
	Timeout  time.Duration
}

// Uses reports whether a change of name concerns the unit.
func (p *RestartPolicy) Uses(name string) bool {
	if p.All {
		return true
	}
	_, ok := slices.BinarySearch(p.Names, name)
	return ok
}

// validUnit reports whether unit is what a unit name may be here: 1 to 240 of [A-Za-z0-9:_.@\-]
// (no path separators, no spaces) and a .service suffix. (A regexp with {1,240} would be compiled
// at start-up by every ov command, at ~0.6 ms.)
func validUnit(unit string) bool {
	stem, ok := strings.CutSuffix(unit, ".service")
	if !ok || len(stem) < 1 || len(stem) > 240 {
		return false
	}
	for i := 0; i < len(stem); i++ {
		switch c := stem[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', strings.IndexByte(":_.@\\-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// errRestartPolicy marks a policy file that is refused.
var errRestartPolicy = errors.New("invalid restart policy")

// LoadRestartPolicies reads every *.conf of dir. The directory and each file must be owned by root
// and writable by no one else, and files must be regular (symlinks are refused): whoever can write
// a policy decides which units the agent restarts. A missing directory means no policies. A file
// that is refused is returned in errs and left out; the others load.
func LoadRestartPolicies(dir string) (ps []RestartPolicy, errs []error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("open restart policies %s: %w", dir, err)}
	}
	d := os.NewFile(uintptr(fd), dir)
	defer d.Close()
	if err := rootOwnedOnly(d); err != nil {
		return nil, []error{fmt.Errorf("open restart policies %s: %w", dir, err)}
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, []error{fmt.Errorf("list restart policies %s: %w", dir, err)}
	}
	slices.Sort(names)
	for _, n := range names {
		if !strings.HasSuffix(n, ".conf") || strings.HasPrefix(n, ".") {
			continue
		}
		p, err := loadPolicy(filepath.Join(dir, n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ps = append(ps, *p)
	}
	return ps, errs
}

// rootOwnedOnly checks that an open file is owned by root and not writable by group or others.
func rootOwnedOnly(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return errors.New("cannot read owner")
	}
	if st.Uid != 0 {
		return fmt.Errorf("owned by uid %d, not root: %w", st.Uid, errRestartPolicy)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("mode %04o is writable by group or others: %w", fi.Mode().Perm(), errRestartPolicy)
	}
	return nil
}

func loadPolicy(path string) (*RestartPolicy, error) {
	unit := strings.TrimSuffix(filepath.Base(path), ".conf")
	if !validUnit(unit) {
		return nil, fmt.Errorf("load restart policy %s: %q is not a service unit name (NAME.service.conf): %w", path, unit, errRestartPolicy)
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("load restart policy %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load restart policy %s: not a regular file: %w", path, errRestartPolicy)
	}
	if err := rootOwnedOnly(f); err != nil {
		return nil, fmt.Errorf("load restart policy %s: %w", path, err)
	}
	p, err := ParseRestartPolicy(unit, io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("load restart policy %s: %w", path, err)
	}
	return p, nil
}

// ParseRestartPolicy parses the text of unit's policy file.
func ParseRestartPolicy(unit string, r io.Reader) (*RestartPolicy, error) {
	if !validUnit(unit) {
		return nil, fmt.Errorf("%q is not a service unit name: %w", unit, errRestartPolicy)
	}
	p := &RestartPolicy{Unit: unit, Action: RestartAction, Interval: DefaultRestartInterval, Timeout: DefaultRestartTimeout}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, fmt.Errorf("line %d: want key = value: %w", ln, errRestartPolicy)
		}
		if seen[k] {
			return nil, fmt.Errorf("line %d: %s given twice: %w", ln, k, errRestartPolicy)
		}
		seen[k] = true
		var err error
		switch k {
		case "app":
			p.App, err = ovnames.NormalizeScope("app", v)
		case "env":
			p.Env, err = ovnames.NormalizeScope("env", v)
		case "names":
			err = p.parseNames(v)
		case "action":
			if v != RestartAction && v != ReloadAction {
				err = fmt.Errorf("action %q: want restart or reload", v)
			}
			p.Action = v
		case "interval":
			p.Interval, err = time.ParseDuration(v)
			if err == nil && (p.Interval < time.Second || p.Interval > 24*time.Hour) {
				err = fmt.Errorf("interval %s: give 1s to 24h", v)
			}
		case "timeout":
			p.Timeout, err = time.ParseDuration(v)
			if err == nil && (p.Timeout < time.Second || p.Timeout > time.Hour) {
				err = fmt.Errorf("timeout %s: give 1s to 1h", v)
			}
		case "order":
			p.Order, err = strconv.Atoi(v)
		default:
			err = fmt.Errorf("unknown key %q (app, env, names, action, interval, order, timeout)", k)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %v: %w", ln, err, errRestartPolicy)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if p.App == "" || p.Env == "" || !seen["names"] {
		return nil, fmt.Errorf("app, env and names are required: %w", errRestartPolicy)
	}
	return p, nil
}

func (p *RestartPolicy) parseNames(v string) error {
	if v == "*" {
		p.All = true
		return nil
	}
	for _, n := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if err := ovnames.Secret(n); err != nil {
			return err
		}
		p.Names = append(p.Names, n)
	}
	if len(p.Names) == 0 {
		return errors.New("names: give secret names or *")
	}
	slices.Sort(p.Names)
	p.Names = slices.Compact(p.Names)
	return nil
}

// UnitManager is the service manager the agent asks to restart units ([sd.Manager]).
type UnitManager interface {
	ReloadOrTryRestart(ctx context.Context, unit string) error
	TryRestart(ctx context.Context, unit string) error
	ActiveState(ctx context.Context, unit string) (string, error)
}

// SecretChange is one name whose version changed in a verified manifest: Version is the new
// version, 0 when the name was deleted.
type SecretChange struct {
	Name    string
	Version uint64
}

func (c SecretChange) String() string {
	if c.Version == 0 {
		return c.Name + "@deleted"
	}
	return c.Name + "@v" + strconv.FormatUint(c.Version, 10)
}

// restarter restarts units one after another, in policy order, at most once per interval each.
type restarter struct {
	mgr UnitManager
	log *logrus.Entry
	now func() time.Time

	mu      sync.Mutex
	pending map[string]*pendingRestart // by unit
	last    map[string]time.Time
	kick    chan struct{}
}

type pendingRestart struct {
	p       RestartPolicy
	seq     uint64
	changes map[string]uint64
}

func newRestarter(mgr UnitManager, log *logrus.Entry) *restarter {
	return &restarter{mgr: mgr, log: log, now: time.Now, pending: map[string]*pendingRestart{},
		last: map[string]time.Time{}, kick: make(chan struct{}, 1)}
}

// queuedRestart is a unit to restart (its policy) and the changes that call for it.
type queuedRestart struct {
	p       RestartPolicy
	changes []SecretChange
}

// queue asks, at once, for the restarts of the units in qs because of their changes at seq;
// changes queued before a restart happens are merged into it.
func (r *restarter) queue(seq uint64, qs ...queuedRestart) {
	r.mu.Lock()
	for _, q := range qs {
		pr := r.pending[q.p.Unit]
		if pr == nil {
			pr = &pendingRestart{p: q.p, changes: map[string]uint64{}}
			r.pending[q.p.Unit] = pr
		}
		pr.seq = max(pr.seq, seq)
		for _, c := range q.changes {
			pr.changes[c.Name] = c.Version
		}
	}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// next takes the pending restart to do now (lowest order, then name, among those whose interval
// has passed), or returns how long to wait for one.
func (r *restarter) next() (*pendingRestart, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	var best *pendingRestart
	wait := time.Duration(-1)
	for u, pr := range r.pending {
		if l, ok := r.last[u]; ok {
			if d := l.Add(pr.p.Interval).Sub(now); d > 0 {
				if wait < 0 || d < wait {
					wait = d
				}
				continue
			}
		}
		if best == nil || pr.p.Order < best.p.Order || pr.p.Order == best.p.Order && u < best.p.Unit {
			best = pr
		}
	}
	if best != nil {
		delete(r.pending, best.p.Unit)
		r.last[best.p.Unit] = now
	}
	return best, wait
}

// run does the queued restarts until ctx is done.
func (r *restarter) run(ctx context.Context) {
	for {
		pr, wait := r.next()
		if pr != nil {
			r.restart(ctx, pr)
			continue
		}
		var t <-chan time.Time
		var tm *time.Timer
		if wait >= 0 {
			tm = time.NewTimer(wait)
			t = tm.C
		}
		select {
		case <-ctx.Done():
		case <-r.kick:
		case <-t:
		}
		if tm != nil {
			tm.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (r *restarter) restart(ctx context.Context, pr *pendingRestart) {
	cs := make([]SecretChange, 0, len(pr.changes))
	for n, v := range pr.changes {
		cs = append(cs, SecretChange{Name: n, Version: v})
	}
	slices.SortFunc(cs, func(a, b SecretChange) int { return strings.Compare(a.Name, b.Name) })
	what := make([]string, len(cs))
	for i, c := range cs {
		what[i] = c.String()
	}
	log := r.log.WithFields(logrus.Fields{"unit": pr.p.Unit, "action": pr.p.Action, "app": pr.p.App, "env": pr.p.Env,
		"seq": pr.seq, "secrets": strings.Join(what, ",")})
	log.Info("secrets changed: asking systemd to " + map[string]string{RestartAction: "try-restart", ReloadAction: "try-reload-or-restart"}[pr.p.Action] + " the unit")
	jctx, cancel := context.WithTimeout(ctx, pr.p.Timeout)
	defer cancel()
	var err error
	if pr.p.Action == ReloadAction {
		err = r.mgr.ReloadOrTryRestart(jctx, pr.p.Unit)
	} else {
		err = r.mgr.TryRestart(jctx, pr.p.Unit)
	}
	if err != nil {
		log.WithError(err).Error("restart failed")
		return
	}
	// Rolling: the next unit waits until this one is active again (or the timeout).
	for {
		st, err := r.mgr.ActiveState(jctx, pr.p.Unit)
		if err == nil && st == "active" {
			log.WithField("state", st).Info("unit restarted")
			return
		}
		if err == nil && st == "inactive" {
			log.WithField("state", st).Info("unit is not running; left stopped")
			return
		}
		if err == nil && st == "failed" {
			log.WithField("state", st).Error("unit failed after the restart")
			return
		}
		select {
		case <-jctx.Done():
			log.WithField("state", st).Warn("unit not active again within the timeout; going on")
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}
