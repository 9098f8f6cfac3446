// SPDX-License-Identifier: Apache-2.0

package mcp

// Forms is forms, for the end-to-end tests in package mcp_test.
var Forms = forms
