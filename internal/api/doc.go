// SPDX-License-Identifier: Apache-2.0

// Package api holds the wire types of the ov-server HTTP API (under /v1/) and the Go client that
// speaks it.
//
// Everything that crosses this API is ciphertext, blinded names, signed manifests, public keys or
// verifiers: nothing here can decrypt, and the package must never import internal/vault. Binary fields
// are []byte (base64 in JSON); identifiers are lowercase hex strings.
//
// # Endpoints
//
//	GET    /healthz                         200 once the server serves
//	POST   /v1/register                     RegisterRequest → AccountBundle (201)
//	POST   /v1/login/params                 LoginParamsRequest → LoginParams
//	POST   /v1/login                        LoginRequest → AccountBundle (enrols a device)
//	GET    /v1/account                      → AccountBundle                       (device)
//	PUT    /v1/account/password             PasswordChange                        (device)
//	GET    /v1/devices                      → DeviceList                          (device)
//	DELETE /v1/devices/{key_id|self}        revoke a device key                   (device)
//	GET    /v1/apps                         → AppList (apps with their envs)      (device, account-wide machine)
//	POST   /v1/apps                         NewApp → App (201; 409 name taken)    (device)
//	POST   /v1/apps/{app_id}/envs           NewEnv → Env (201; 409 name taken)    (device)
//	GET    /v1/envs/{env_id}                → EnvState                            (device, machine in scope)
//	PUT    /v1/envs/{env_id}/manifest       Commit → CommitResult (409 stale seq) (device)
//	GET    /v1/audit?limit=N&before=ID&since=T&target=X → AuditList (newest first) (device)
//	GET    /v1/envs/{env_id}/history        → EnvHistory (every manifest, writers)  (device)
//	POST   /v1/envs/{env_id}/history/records HistoryRecordsRequest → HistoryRecords (device)
//	GET    /v1/envs/{env_id}/watch?after=N  → EnvWatch when seq > N; 204 after 30 s  (device, machine in scope)
//	POST   /v1/machines                     NewMachine (201)                      (device)
//	GET    /v1/machines                     → MachineList                         (device)
//	DELETE /v1/machines/{machine_id}        soft revoke                           (device)
//	PUT    /v1/machines/{machine_id}/wraps  MachineWraps (re-wrap after rotation) (device)
//	GET    /v1/machine                      → MachineSelf                         (machine)
//
// Devices authenticate with "Authorization: Bearer ovd_…" (see envelope.ParseAPIToken); machines with
// "Authorization: Bearer ovm_…". Errors are an [ErrorBody] with an HTTP status and a stable code.
package api
