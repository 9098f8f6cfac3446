// SPDX-License-Identifier: Apache-2.0

package cli

import "runtime"

// runtimeGOOS is a variable so that tests can print the other platform's "Next steps".
var runtimeGOOS = runtime.GOOS
