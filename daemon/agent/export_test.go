// SPDX-License-Identifier: Apache-2.0

package agent

import "net"

// CredentialPeerForTest parses a peer address as the credential provider does.
func CredentialPeerForTest(addr string) (unit, name string, ok bool) {
	return credentialPeer(&net.UnixAddr{Name: addr, Net: "unix"})
}
