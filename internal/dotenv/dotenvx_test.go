// SPDX-License-Identifier: Apache-2.0

package dotenv

import "testing"

// Scenarios of the dotenvx cross-implementation report (numbers are its
// scenario ids) that other tests do not already cover. Where the report's
// expectation (Node's reading) differs from ours, the case says why.
func TestDotenvxScenarios(t *testing.T) {
	on := Options{Expand: true, Env: envMap(map[string]string{"MACHINE": "machine"})}
	runParseCases(t, Dotenv, []parseCase{
		{
			name: "105 hash without blank (report: cut at #; py, go, compose agree with us)",
			in:   "INLINE_COMMENT_NO_SPACE=inline comments start with a#number sign. no space required.\n",
			want: kv("INLINE_COMMENT_NO_SPACE", "inline comments start with a#number sign. no space required."), warns: []string{WarnComment},
		},
		{name: "107 shebang line", in: "#!/usr/bin/env bash\nexport KEY=value\n", want: kv("KEY", "value")},
		{
			name: "117 do not choke on punctuation",
			in: "DONT_CHOKE1='.kZh`>4[,[DDU-*Jt+[;8-,@K=,9%;F9KsoXqOE)gpG^X!{)Q+/9Fc(QF}i[NEi!'\n" +
				"DONT_CHOKE2='=;+=CNy3)-D=zI6gRP2w\\$B@0K;Y]e^EFnCmx\\$Dx?;.9wf-rgk1BcTR0]JtY<S:b_'\n" +
				"DONT_CHOKE5='#la__nK?IxNlQ%`5q&DpcZ>Munx=[1-AMgAcwmPkToxTaB?kgdF5y`A8m=Oa-B!)'\n",
			want: kv("DONT_CHOKE1", ".kZh`>4[,[DDU-*Jt+[;8-,@K=,9%;F9KsoXqOE)gpG^X!{)Q+/9Fc(QF}i[NEi!",
				"DONT_CHOKE2", "=;+=CNy3)-D=zI6gRP2w\\$B@0K;Y]e^EFnCmx\\$Dx?;.9wf-rgk1BcTR0]JtY<S:b_",
				"DONT_CHOKE5", "#la__nK?IxNlQ%`5q&DpcZ>Munx=[1-AMgAcwmPkToxTaB?kgdF5y`A8m=Oa-B!)"),
		},
		{
			name: "310 expansion in double quotes, off", in: `B="{ port: $MONGOLAB_PORT}"`,
			want: kv("B", "{ port: $MONGOLAB_PORT}"), warns: []string{WarnExpansion},
		},
		{
			name: "310 expansion in double quotes, on", in: `B="{ port: $MONGOLAB_PORT}"`, opt: on,
			want: kv("B", "{ port: }"), warns: []string{WarnExpansion},
		},
		{name: "311 two dollars, on", in: `TWO_DOLLAR_SIGNS="abcd$$1234"`, opt: on, want: kv("TWO_DOLLAR_SIGNS", "abcd$$1234")},
		{
			name: "404 backticks are not quotes (report: stripped; py, rb agree with us)",
			in:   "INLINE_COMMENTS_BACKTICKS=`inline comments outside of #backticks` # work",
			want: kv("INLINE_COMMENTS_BACKTICKS", "`inline comments outside of"), warns: []string{WarnBacktick},
		},
		{
			name: "504 command substitution with nested quotes is refused",
			in:   "PARENTHESES='passwo(rd'\nPARENTHESES_EXPAND=\"$(echo \"$PARENTHESES\")\"\n", opt: on,
			err: "2:29: unexpected text after the closing quote",
		},
		{name: "517 default from the environment", in: "EXPAND_DEFAULT=${MACHINE:-default}", opt: on, want: kv("EXPAND_DEFAULT", "machine")},
		{name: "520 nested default without colon", in: "N=${MACHINE-${UNDEFINED-default}}", opt: on, want: kv("N", "machine")},
	})
}
