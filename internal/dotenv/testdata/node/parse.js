// SPDX-License-Identifier: Apache-2.0
// Reads each file named on the command line with dotenv.parse and prints
// one JSON object: file -> { name: value }.
const fs = require('fs')
const dotenv = require('dotenv')
const out = {}
for (const f of process.argv.slice(2)) {
  out[f] = dotenv.parse(fs.readFileSync(f))
}
process.stdout.write(JSON.stringify(out))
