// SPDX-License-Identifier: Apache-2.0

package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/opaquevault/opaquevault/internal/api"
)

// apiError is an error answered to the client: an HTTP status, a stable code from package api and
// a message that never holds secret material.
type apiError struct {
	status int
	code   string
	msg    string
	retry  time.Duration // Retry-After, for 429
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, api.CodeBadRequest, format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, api.CodeNotFound, format, args...)
}

func conflict(format string, args ...any) *apiError {
	return errorf(http.StatusConflict, api.CodeConflict, format, args...)
}

func forbidden(format string, args ...any) *apiError {
	return errorf(http.StatusForbidden, api.CodeForbidden, format, args...)
}

func unauthorized(format string, args ...any) *apiError {
	return errorf(http.StatusUnauthorized, api.CodeUnauthorized, format, args...)
}

func tooLarge(format string, args ...any) *apiError {
	return errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, format, args...)
}

func rateLimited(retry time.Duration) *apiError {
	return &apiError{status: http.StatusTooManyRequests, code: api.CodeRateLimited, msg: "too many requests: retry later", retry: retry}
}

var errInternal = errorf(http.StatusInternalServerError, api.CodeInternal, "internal server error")

// asAPIError returns the apiError in err's chain, or nil.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal server error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retry > 0 {
		secs := int((e.retry + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	writeJSON(w, e.status, api.ErrorBody{Error: api.ErrorDetail{Code: e.code, Message: e.msg}})
}
