// SPDX-License-Identifier: Apache-2.0

package polkit_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/opaquevault/opaquevault/polkit"
)

func TestPolicy(t *testing.T) {
	var p struct {
		Actions []struct {
			ID       string `xml:"id,attr"`
			Defaults struct {
				Any      string `xml:"allow_any"`
				Inactive string `xml:"allow_inactive"`
				Active   string `xml:"allow_active"`
			} `xml:"defaults"`
		} `xml:"action"`
	}
	if err := xml.Unmarshal(polkit.Policy(), &p); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range p.Actions {
		got[a.ID] = true
		if a.Defaults.Any != "no" || a.Defaults.Inactive != "no" || a.Defaults.Active != "auth_admin_keep" {
			t.Errorf("%s defaults %+v", a.ID, a.Defaults)
		}
	}
	for _, id := range []string{"com.opaquevault.agent.lock", "com.opaquevault.agent.reload", "com.opaquevault.agent.install"} {
		if !got[id] {
			t.Errorf("action %s missing", id)
		}
	}
}

// TestBusPolicy checks the rendered rules; daemon/agent's bus tests load
// the file into a real dbus-daemon and check what it allows.
func TestBusPolicy(t *testing.T) {
	b, err := polkit.BusPolicy("deploy")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Policies []struct {
			User    string `xml:"user,attr"`
			Context string `xml:"context,attr"`
			Allow   []struct {
				Own    string `xml:"own,attr"`
				Dest   string `xml:"send_destination,attr"`
				Iface  string `xml:"send_interface,attr"`
				Member string `xml:"send_member,attr"`
			} `xml:"allow"`
		} `xml:"policy"`
	}
	if err := xml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	owners, calls := 0, []string{}
	for _, p := range c.Policies {
		for _, a := range p.Allow {
			if a.Own != "" {
				owners++
				if p.User != "deploy" || a.Own != "com.opaquevault.Agent1" {
					t.Errorf("own rule for %q: %+v", p.User, a)
				}
			}
			if a.Dest == "com.opaquevault.Agent1" && p.Context == "default" {
				calls = append(calls, a.Iface+"."+a.Member)
			}
		}
	}
	if owners != 1 {
		t.Errorf("%d own rules", owners)
	}
	if s := strings.Join(calls, " "); !strings.Contains(s, "com.opaquevault.Agent1.Status") || !strings.Contains(s, "Introspectable") {
		t.Errorf("default policy allows %q", s)
	}
	for _, bad := range []string{"", "root\"/><allow own=\"*", "a b", "0day", strings.Repeat("a", 33)} {
		if _, err := polkit.BusPolicy(bad); err == nil {
			t.Errorf("BusPolicy(%q) accepted", bad)
		}
	}
}

func TestOwnedPolicy(t *testing.T) {
	b, err := polkit.OwnedPolicy("deploy")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Actions []struct {
			ID       string `xml:"id,attr"`
			Annotate []struct {
				Key   string `xml:"key,attr"`
				Value string `xml:",chardata"`
			} `xml:"annotate"`
		} `xml:"action"`
	}
	if err := xml.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	for _, a := range p.Actions {
		if len(a.Annotate) != 1 || a.Annotate[0].Key != "org.freedesktop.policykit.owner" || a.Annotate[0].Value != "unix-user:deploy" {
			t.Errorf("%s: %+v", a.ID, a.Annotate)
		}
	}
	if _, err := polkit.OwnedPolicy("a<b"); err == nil {
		t.Error("bad user accepted")
	}
}
