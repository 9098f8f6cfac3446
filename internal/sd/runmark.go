// SPDX-License-Identifier: Apache-2.0

package sd

// RunStartEvent is the OV_EVENT of the journal entry `ov run` writes, under systemd, just before
// it replaces itself with the program: proof that the unit started with its secrets from the vault
// (`ov systemd retire-env` looks for it). The entry carries OV_APP, OV_ENV, OV_PROGRAM and
// OV_SECRETS (a count), never a name or a value of a secret.
const RunStartEvent = "run-start"
