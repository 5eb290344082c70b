package conf

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
)

const (
	policyRuleID = "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b" // new_terms, in rules/
	accessRuleID = "aed4b9d5-f853-40cf-8489-4fdcff03e272" // query, in rules/
)

// iacExport is a Kibana exception-list export: the list "iac" with one
// item, and the list "ci" with two.
const iacExport = `{"list_id":"iac","type":"detection","name":"IaC identities","namespace_type":"single"}
{"item_id":"terraform","list_id":"iac","type":"simple","name":"Terraform deployer","namespace_type":"single","entries":[{"field":"aws.cloudtrail.user_identity.arn","operator":"included","type":"match","value":"arn:aws:iam::111122223333:user/terraform"}]}
{"list_id":"ci","type":"detection","name":"CI runners","namespace_type":"single"}
{"item_id":"gh","list_id":"ci","type":"simple","name":"GitHub Actions","namespace_type":"single","entries":[{"field":"user.name","operator":"included","type":"match","value":"gh-actions"}]}
{"item_id":"gl","list_id":"ci","type":"simple","name":"GitLab","namespace_type":"single","entries":[{"field":"user.name","operator":"included","type":"match","value":"gitlab-runner"}]}
{"exported_exception_list_count":2,"exported_exception_list_item_count":3,"missing_exception_list_item_count":0}
`

func writeFiles(t *testing.T, files map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	paths := map[string]string{}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		paths[name] = p
	}
	return paths
}

func seedRules(t *testing.T) (*RuleSet, map[string]*Rule) {
	t.Helper()
	rs, err := LoadRules(cloudtrail.NewSchema(), "rules")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Rule{}
	for _, r := range rs.Rules {
		byID[r.RuleID] = r
	}
	return rs, byID
}

func names(xs []*Exception) string {
	var out []string
	for _, x := range xs {
		out = append(out, x.Name)
	}
	return strings.Join(out, ",")
}

// TestAttachAppliesListsToRules: [[attach]] applies a Kibana list to every
// rule ("*"), to one rule_id, or to a list of them, as a rule's own
// exceptions_list does; a list that reaches a rule both ways applies once.
func TestAttachAppliesListsToRules(t *testing.T) {
	rs, byID := seedRules(t)
	f := writeFiles(t, map[string]string{"lists.ndjson": iacExport, "attach.toml": `# IaC everywhere, CI on the policy rule
[[attach]]
list_id = "iac"
rule_id = "*"

[[attach]] # by rule_id
list_id = "ci"
rule_id = ["` + policyRuleID + `"]

[[attach]]
list_id = "ci"
rule_id = "` + policyRuleID + `"
comment = "twice: applies once"

[[exception]]
rule_id = "*"
query = 'user.name: sandbox-*'
comment = "sandbox accounts"
`})
	x, warnings, err := LoadExceptionsFor(rs, f["lists.ndjson"], f["attach.toml"])
	if err != nil || len(warnings) != 0 {
		t.Fatalf("err %v, warnings %v", err, warnings)
	}
	if got := names(x.For(byID[policyRuleID])); got != "sandbox accounts,Terraform deployer,GitHub Actions,GitLab" {
		t.Errorf("policy rule's exceptions: %s", got)
	}
	if got := names(x.For(byID[accessRuleID])); got != "sandbox accounts,Terraform deployer" {
		t.Errorf("access rule's exceptions: %s", got)
	}
	uses := x.ListsFor(byID[policyRuleID])
	if len(uses) != 2 || uses[0].Via != f["attach.toml"]+":3" || uses[1].Via != f["attach.toml"]+":7" ||
		uses[0].List.Name != "IaC identities" || uses[0].List.Items != 1 || uses[1].List.Items != 2 || uses[1].List.Line != 3 {
		t.Errorf("lists of the policy rule: %+v", uses)
	}
	if l := x.Local(byID[accessRuleID]); len(l) != 1 || l[0].Where != f["attach.toml"]+":15" {
		t.Errorf("local exceptions %+v, want one placed at line 15", l)
	}
	// The rule names "ci" itself as well: it still applies once, first as
	// the rule's own.
	byID[policyRuleID].ExceptionsList = []ListRef{{ListID: "ci"}}
	defer func() { byID[policyRuleID].ExceptionsList = nil }()
	if got := names(x.For(byID[policyRuleID])); got != "sandbox accounts,GitHub Actions,GitLab,Terraform deployer" {
		t.Errorf("policy rule's exceptions with ci in its exceptions_list: %s", got)
	}
	if uses := x.ListsFor(byID[policyRuleID]); uses[0].Via != "exceptions_list" {
		t.Errorf("first use %+v, want the rule's exceptions_list", uses[0])
	}
}

// TestUnattachedListWarns: a list loaded but attached to no running rule
// excepts nothing and is a warning naming the list and its file; one the
// rule's own exceptions_list names is not.
func TestUnattachedListWarns(t *testing.T) {
	rs, byID := seedRules(t)
	f := writeFiles(t, map[string]string{"lists.ndjson": iacExport})
	x, warnings, err := LoadExceptionsFor(rs, f["lists.ndjson"])
	if err != nil {
		t.Fatal(err)
	}
	if len(x.For(byID[policyRuleID]))+len(x.For(byID[accessRuleID])) != 0 {
		t.Errorf("an unattached list applies: %v %v", x.For(byID[policyRuleID]), x.For(byID[accessRuleID]))
	}
	want := []string{f["lists.ndjson"] + `:3: exception list "ci" is attached to no running rule`, f["lists.ndjson"] + `:1: exception list "iac" is attached to no running rule`}
	if len(warnings) != 2 || !strings.HasPrefix(warnings[0].Error(), want[0]) || !strings.HasPrefix(warnings[1].Error(), want[1]) {
		t.Errorf("warnings %v, want them to start with %q", warnings, want)
	}
	byID[accessRuleID].ExceptionsList = []ListRef{{ListID: "iac"}}
	defer func() { byID[accessRuleID].ExceptionsList = nil }()
	if _, warnings, _ = LoadExceptionsFor(rs, f["lists.ndjson"]); len(warnings) != 1 || !strings.Contains(warnings[0].Error(), `"ci"`) {
		t.Errorf("with iac in a rule's exceptions_list: warnings %v, want only ci's", warnings)
	}
	// A list attached only to a rule that does not run excepts nothing.
	byID[accessRuleID].ExceptionsList = nil
	eql := writeFiles(t, map[string]string{"eql.toml": "[rule]\nname = \"e\"\nrule_id = \"eql-1\"\ntype = \"machine_learning\"\nquery = ''\n",
		"attach.toml": "[[attach]]\nlist_id = \"iac\"\nrule_id = \"eql-1\"\n[[attach]]\nlist_id = \"ci\"\nrule_id = \"*\"\n"})
	rs2, err := LoadRules(cloudtrail.NewSchema(), "rules", eql["eql.toml"])
	if err != nil {
		t.Fatal(err)
	}
	_, warnings, err = LoadExceptionsFor(rs2, f["lists.ndjson"], eql["attach.toml"])
	if err != nil || len(warnings) != 1 || !strings.HasPrefix(warnings[0].Error(), want[1]) {
		t.Errorf("iac attached to a skipped rule only: err %v, warnings %v", err, warnings)
	}
}

// TestAttachErrorsArePlaced: an [[attach]] naming an unknown list or
// rule_id, or malformed, is an error with its file and line.
func TestAttachErrorsArePlaced(t *testing.T) {
	rs, _ := seedRules(t)
	f := writeFiles(t, map[string]string{"lists.ndjson": iacExport, "bad.toml": `[[attach]]
list_id = "iac"
rule_id = ["no-such-rule", "` + policyRuleID + `"]

  [[ attach ]]
  list_id = "nope"
  rule_id = "*"

[[attach]]
rule_id = "*"

[[attach]]
list_id = "ci"
rule_id = 3

[[attach]]
list_id = "ci"
rule_id = ["*"]

[[attach]]
list_id = "ci"

[[attach]]
list_id = "ci"
rule_id = []
rule = "x"
`})
	_, _, err := LoadExceptionsFor(rs, f["lists.ndjson"], f["bad.toml"])
	if err == nil {
		t.Fatal("no error")
	}
	p := f["bad.toml"]
	for _, want := range []string{
		p + `:3: [[attach]] rule_id "no-such-rule": no rule of the rule set has that rule_id`,
		p + `:6: [[attach]] list_id "nope": no exception-list export given holds that list (lists loaded: ci, iac)`,
		p + `:9: [[attach]]: list_id is required`,
		p + `:14: [[attach]] of "ci": rule_id is 3`,
		p + `:18: [[attach]] of "ci": rule_id holds "*": for every rule write rule_id = "*", not in a list`,
		p + `:20: [[attach]] of "ci": rule_id is required`,
		p + `:25: [[attach]] of "ci": rule_id is an empty list`,
		p + `: unknown key "attach.rule"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	if n := len(err.(Errors)); n != 8 {
		t.Errorf("%d errors, want 8:\n%v", n, err)
	}
	// Without any export, the message says no list is loaded.
	_, err = LoadExceptions(rs.Schema, f["bad.toml"])
	if err == nil || !strings.Contains(err.Error(), `list_id "iac": no exception-list export given holds that list (no Kibana list is loaded)`) {
		t.Errorf("without an export: %v", err)
	}
}

// TestTableKeyLine: the line of a key in the n-th [[table]], of the table
// when the key is not there, of an inline array of tables, or 0.
func TestTableKeyLine(t *testing.T) {
	data := []byte("# c\n[[attach]] # first\nlist_id = \"a\"\n\n[[exception]]\nrule_id = \"*\"\n[[attach]]\nrule_ids = 1\nrule_id = \"x\"\n")
	for _, c := range []struct {
		table string
		n     int
		key   string
		want  int
	}{
		{"attach", 0, "list_id", 3}, {"attach", 0, "rule_id", 2}, {"attach", 1, "rule_id", 9}, {"attach", 1, "list_id", 7},
		{"exception", 0, "", 5}, {"exception", 0, "rule_id", 6}, {"attach", 2, "rule_id", 0},
	} {
		if got := tableKeyLine(data, c.table, c.n, c.key); got != c.want {
			t.Errorf("%s %d %s: line %d, want %d", c.table, c.n, c.key, got, c.want)
		}
	}
	if got := tableKeyLine([]byte("\nattach = [{list_id = \"a\", rule_id = \"*\"}]\n"), "attach", 0, "list_id"); got != 2 {
		t.Errorf("inline array of tables: line %d, want 2", got)
	}
}

// TestListOfABadItemIsKnown: an item that cannot be read is an error at its
// line; its list is still known, so an [[attach]] of it is not a second,
// misleading error.
func TestListOfABadItemIsKnown(t *testing.T) {
	f := writeFiles(t, map[string]string{
		"lists.ndjson": `{"item_id":"v","list_id":"vals","type":"simple","entries":[{"field":"source.ip","operator":"included","type":"list","list":{"id":"ips","type":"ip"}}]}` + "\n",
		"attach.toml":  "[[attach]]\nlist_id = \"vals\"\nrule_id = \"*\"\n",
	})
	x, err := LoadExceptions(cloudtrail.NewSchema(), f["lists.ndjson"], f["attach.toml"])
	es, _ := err.(Errors)
	if len(es) != 1 || !strings.HasPrefix(es[0].Error(), f["lists.ndjson"]+`:1: item "v": entry source.ip: value lists`) {
		t.Errorf("errors %v, want the item's only", err)
	}
	if l := x.Lists["vals"]; l == nil || l.Items != 0 || l.Line != 1 {
		t.Errorf("list %+v, want it known at line 1 with no item read", l)
	}
}

// TestWildcardEntryAsElasticsearch: Kibana gives a wildcard entry to
// Elasticsearch as a wildcard query: * any characters, \ escaping the next
// one (a literal * or \), and ? any one character. A \ was taken for a
// literal backslash and a ? for a literal ?, so the exception silenced
// other values than it named; a ? is now refused with its place (KQL has
// no one-character wildcard).
func TestWildcardEntryAsElasticsearch(t *testing.T) {
	item := func(id, value string) string {
		v, _ := json.Marshal(value)
		return `{"item_id":"` + id + `","list_id":"w","type":"simple","entries":[{"field":"event.action","operator":"included","type":"wildcard","value":` + string(v) + `}]}` + "\n"
	}
	f := writeFiles(t, map[string]string{"w.ndjson": item("star", `Get*Policy`) + item("lit", `Put\*x`) + item("back", `a\\b*`) + item("one", `Delete?ser`)})
	x, err := LoadExceptions(cloudtrail.NewSchema(), f["w.ndjson"])
	es, _ := err.(Errors)
	if len(es) != 1 || !strings.HasPrefix(es[0].Error(), f["w.ndjson"]+`:4: item "one": entry event.action: wildcard "Delete?ser": ? (any one character)`) {
		t.Fatalf("errors %v, want the ? item's alone", err)
	}
	byName := map[string]*Exception{}
	for _, e := range x.ByList["w"] {
		byName[e.Name] = e
	}
	for _, c := range []struct {
		item, action string
		want         bool
	}{
		{"star", "GetBucketPolicy", true}, {"star", "GetBucketAcl", false},
		{"lit", "Put*x", true}, {"lit", `Put\abcx`, false}, {"lit", "Putabcx", false},
		{"back", `a\bcd`, true}, {"back", `a\\bcd`, false},
	} {
		n, err := doc.ParseJSON([]byte(`{"eventSource":"iam.amazonaws.com","eventName":` + strconv.Quote(c.action) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		ev := &cloudtrail.Event{}
		ev.Reset(n, nil, time.Now(), nil)
		if got := byName[c.item].Query.Match(ev); got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.item, c.action, got, c.want)
		}
	}
}

// TestSpecialFilesRefused: a FIFO in a rules folder made every load (and
// reload) wait for ever; /dev/zero linked there, or given as an exception
// file, filled memory (their size reads 0). They are refused, named; a
// file whose size is past the bound is refused before it is read; and
// where pipes are allowed (serve's config, *_file secrets) no more than
// the bound is read from one, whatever comes down it.
func TestSpecialFilesRefused(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.toml"), 0o600); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.toml")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := LoadRules(cloudtrail.NewSchema(), dir)
		done <- err
	}()
	select {
	case err := <-done:
		for _, want := range []string{"fifo.toml: not a regular file", "zero.toml: not a regular file"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("rules: %v, want %q", err, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading a folder with a FIFO did not return")
	}
	if _, err := LoadExceptions(cloudtrail.NewSchema(), "/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("exceptions /dev/zero: %v", err)
	}
	go func() {
		_, err := LoadExceptions(cloudtrail.NewSchema(), filepath.Join(dir, "fifo.toml"))
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "fifo.toml: not a regular file") {
			t.Errorf("exceptions FIFO: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("loading a FIFO as an exception file did not return")
	}

	// A file whose size says more than the bound is refused before it is
	// read (a sparse file: nothing to read but its size).
	big := t.TempDir()
	for _, name := range []string{"huge.toml", "huge.ndjson"} {
		f, err := os.Create(filepath.Join(big, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(maxRuleFile + 1); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	want := "file is " + strconv.Itoa(maxRuleFile+1) + " bytes; "
	if _, err := LoadRules(cloudtrail.NewSchema(), filepath.Join(big, "huge.toml")); err == nil ||
		!strings.Contains(err.Error(), "huge.toml: "+want+"a rule file may be at most "+strconv.Itoa(maxRuleFile)) {
		t.Errorf("rules past the bound: %v", err)
	}
	if _, err := LoadExceptions(cloudtrail.NewSchema(), filepath.Join(big, "huge.ndjson")); err == nil ||
		!strings.Contains(err.Error(), "huge.ndjson: "+want+"an exception file may be at most "+strconv.Itoa(maxRuleFile)) {
		t.Errorf("exceptions past the bound: %v", err)
	}

	// serve's config and *_file secrets may be pipes: read to their bound,
	// and no further, whatever comes down the pipe (a secret's bound here,
	// 64 KB, as 64 MB through a pipe is slow under -race). A device is
	// still no pipe.
	if _, err := ReadFile("/dev/zero", maxRuleFile, "a config file", true); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("config /dev/zero: %v", err)
	}
	const secretMax = 64 << 10
	pipe := func(t *testing.T, data func(w *os.File) int64) (got []byte, written int64, err error) {
		fifo := filepath.Join(t.TempDir(), "p")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		wrote := make(chan int64, 1)
		go func() {
			w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
			if err != nil {
				wrote <- -1
				return
			}
			n := data(w)
			w.Close()
			wrote <- n
		}()
		type res struct {
			b   []byte
			err error
		}
		read := make(chan res, 1)
		go func() {
			b, err := ReadFile(fifo, secretMax, "a secret's file", true)
			read <- res{b, err}
		}()
		select {
		case r := <-read:
			got, err = r.b, r.err
		case <-time.After(10 * time.Second):
			t.Fatal("reading a pipe did not return")
		}
		// A writer still waiting for a reader (the pipe refused unopened)
		// is let go.
		deadline := time.After(10 * time.Second)
		for written = -2; written == -2; {
			if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				r.Close()
			}
			select {
			case written = <-wrote:
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatal("the pipe's writer never ended")
			}
		}
		return got, written, err
	}
	got, _, err := pipe(t, func(w *os.File) int64 {
		n, _ := w.WriteString("token = \"s3cret\"\n")
		return int64(n)
	})
	if err != nil || string(got) != "token = \"s3cret\"\n" {
		t.Errorf("a small pipe: %q, %v", got, err)
	}
	// A writer with 32 MB past the bound: refused once the bound is
	// passed, the pipe closed, the writer stopped near the bound (what
	// the pipe buffers aside).
	const past = 32 << 20
	got, written, err := pipe(t, func(w *os.File) int64 {
		chunk := make([]byte, 64<<10)
		var n int64
		for n < secretMax+past {
			m, err := w.Write(chunk)
			n += int64(m)
			if err != nil {
				break
			}
		}
		return n
	})
	if err == nil || !strings.Contains(err.Error(), "more than "+strconv.Itoa(secretMax)+" bytes; a secret's file may be at most") || got != nil {
		t.Errorf("a pipe past the bound: %d bytes, %v", len(got), err)
	}
	if written > secretMax+4<<20 {
		t.Errorf("the pipe took %d bytes: read past the bound (%d)", written, secretMax)
	}
}

// TestExportAsKibanaImportsIt: what Kibana's import and its exception
// filter make of items, held against what trailwatch makes of them. An
// expired item excepted for ever; an item limited to an operating system
// (os_types: Kibana adds host.os.type, which no CloudTrail record has)
// excepted everything it matched; values Kibana's import refuses (an
// empty match, null in a match_any, no operator) were coerced, some into
// excepting every record; lines that are no list, item or summary (an item
// without item_id, a rule) were dropped without a word; a key spelled
// otherwise (Operator) was taken for the key; one list_id in two
// namespaces was merged.
func TestExportAsKibanaImportsIt(t *testing.T) {
	item := func(id, extra, entries string) string {
		return `{"item_id":"` + id + `","list_id":"l","type":"simple","name":"` + id + `"` + extra + `,"entries":[` + entries + `]}` + "\n"
	}
	alice := `{"field":"user.name","operator":"included","type":"match","value":"alice"}`
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	f := writeFiles(t, map[string]string{
		"ok.ndjson": `{"list_id":"l","type":"detection","name":"L","namespace_type":"single"}` + "\n" +
			item("expired", `,"expire_time":"2020-01-01T00:00:00.000Z"`, alice) +
			item("windows", `,"os_types":["windows"]`, alice) +
			item("soon", `,"expire_time":"`+future+`"`, alice),
	})
	x, err := LoadExceptions(cloudtrail.NewSchema(), f["ok.ndjson"])
	if err != nil {
		t.Fatal(err)
	}
	l := x.Lists["l"]
	if l.Items != 2 || l.Expired != 1 || l.OSOnly != 1 || len(x.ByList["l"]) != 2 {
		t.Fatalf("list %+v, want 2 items kept, 1 of them expired, 1 os-only left out", l)
	}
	n, err := doc.ParseJSON([]byte(`{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","userIdentity":{"type":"IAMUser","userName":"alice"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := &cloudtrail.Event{}
	ev.Reset(n, nil, time.Now(), nil)
	expired, soon := x.ByList["l"][0], x.ByList["l"][1]
	if !soon.Holds(ev, time.Now()) || soon.Holds(ev, time.Now().Add(2*time.Hour)) {
		t.Error("an item with an expire_time must hold before it and not after")
	}
	if expired.Holds(ev, time.Now()) || !expired.Holds(ev, time.Date(2019, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("an expired item must hold only for records dated before its expire_time")
	}

	for name, c := range map[string]struct{ body, want string }{
		"empty match":      {item("e", "", `{"field":"user.name","operator":"excluded","type":"match","value":""}`), `:1: item "e": entry user.name: match needs one non-empty string value`},
		"null in any":      {item("n", "", `{"field":"user.name","operator":"excluded","type":"match_any","value":[null]}`), `:1: item "n": entry user.name: match_any value 1 is not a non-empty string`},
		"object in any":    {item("o", "", `{"field":"user.name","operator":"included","type":"match_any","value":["a",{"a":1}]}`), `value 2 is not a non-empty string`},
		"no operator":      {item("p", "", `{"field":"user.name","type":"match","value":"alice"}`), `:1: item "p": entry user.name: operator missing`},
		"other spelling":   {item("s", "", `{"field":"user.name","Operator":"excluded","type":"match","value":"alice"}`), `:1: item "s": entries:`},
		"no item_id":       {`{"list_id":"l","type":"simple","name":"x","entries":[` + alice + `]}` + "\n", `:1: a list item needs item_id and list_id`},
		"not an object":    {`{"foo":1}` + "\n", `:1: not an exception list, list item or export summary`},
		"a rule":           {`{"rule_id":"r1","query":"x","type":"query","name":"r"}` + "\n", `:1: a detection rule, not an exception list object`},
		"empty":            {"\n\n", `holds no exception list object`},
		"nested in nested": {item("nn", "", `{"field":"a","type":"nested","entries":[{"field":"b","type":"nested","entries":[`+alice+`]}]}`), `nested b inside nested`},
		"bad expire_time":  {item("x", `,"expire_time":"Friday"`, alice), `:1: item "x": expire_time "Friday"`},
		"two namespaces": {`{"list_id":"l","type":"detection","name":"L","namespace_type":"single"}` + "\n" +
			`{"list_id":"l","type":"detection","name":"L","namespace_type":"agnostic"}` + "\n", `:2: list_id "l" is a agnostic list here and a single list at`},
	} {
		p := writeFiles(t, map[string]string{"x.ndjson": c.body})["x.ndjson"]
		_, err := LoadExceptions(cloudtrail.NewSchema(), p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// TestHostileExportsBounded: an item nested ten thousand levels took
// seconds to refuse, with an error as long as the nesting; a match_any of
// millions of values took gigabytes.
func TestHostileExportsBounded(t *testing.T) {
	deep := `{"item_id":"d","list_id":"l","type":"simple","entries":` + strings.Repeat(`[{"field":"a","type":"nested","entries":`, 12000) + `[]` + strings.Repeat(`}]`, 12000) + "}\n"
	many := `{"item_id":"m","list_id":"l","type":"simple","entries":[{"field":"user.name","operator":"included","type":"match_any","value":[` + strings.Repeat(`"v",`, 70000) + `"v"]}]}` + "\n"
	f := writeFiles(t, map[string]string{"deep.ndjson": deep, "many.ndjson": many})
	start := time.Now()
	_, err := LoadExceptions(cloudtrail.NewSchema(), f["deep.ndjson"])
	if err == nil || !strings.Contains(err.Error(), "nested more than 16 levels deep") || len(err.Error()) > 1000 {
		t.Errorf("deep: %.300v", err)
	}
	_, err = LoadExceptions(cloudtrail.NewSchema(), f["many.ndjson"])
	if err == nil || !strings.Contains(err.Error(), "match_any of 70001 values (at most 65536)") {
		t.Errorf("many: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
}

// TestExceptionForNoRuleWarns: an [[exception]] whose rule_id no rule has
// excepted nothing without a word (a typo in a rule_id).
func TestExceptionForNoRuleWarns(t *testing.T) {
	rs, _ := seedRules(t)
	f := writeFiles(t, map[string]string{"x.toml": "[[exception]]\nrule_id = \"no-such-rule\"\nquery = 'user.name: \"alice\"'\n"})
	_, warnings, err := LoadExceptionsFor(rs, f["x.toml"])
	if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0].Error(), f["x.toml"]+`:1: [[exception]] rule_id "no-such-rule": no rule`) {
		t.Errorf("warnings %v, err %v", warnings, err)
	}
}

// TestListFoundInItsNamespace: a rule's exceptions_list names a list in a
// namespace; a list of the same list_id in the other namespace is another
// list (Kibana finds lists by namespace and list_id), and excepts nothing.
func TestListFoundInItsNamespace(t *testing.T) {
	f := writeFiles(t, map[string]string{
		"r.toml": `[rule]
name = "r"
rule_id = "ns-1"
type = "query"
language = "kuery"
severity = "low"
risk_score = 21
query = 'event.provider: "iam.amazonaws.com"'
[[rule.exceptions_list]]
id = "x"
list_id = "mylist"
type = "detection"
namespace_type = "single"
`,
		"agnostic.ndjson": `{"list_id":"mylist","type":"detection","name":"L","namespace_type":"agnostic"}
{"item_id":"i","list_id":"mylist","type":"simple","namespace_type":"agnostic","entries":[{"field":"user.name","operator":"included","type":"match","value":"alice"}]}
`})
	rs, err := LoadRules(cloudtrail.NewSchema(), f["r.toml"])
	if err != nil {
		t.Fatal(err)
	}
	x, _, err := LoadExceptionsFor(rs, f["agnostic.ndjson"])
	if err != nil {
		t.Fatal(err)
	}
	if got := x.For(rs.Rules[0]); len(got) != 0 {
		t.Errorf("the rule took %d exceptions of the agnostic list", len(got))
	}
}
