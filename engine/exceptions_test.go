package engine

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/store"
)

// TestAttachedListChangesHistoryIdentityKeepingTerms: attaching a Kibana
// list to a new_terms rule changes the records it counts, so its history's
// identity, as editing its exceptions does: the history is rebuilt from
// what the rule had seen (no term turns new again), the excepted identity
// is not recorded from then on, and removing the attachment keeps what was
// seen meanwhile. A list that reaches the rule both through its
// exceptions_list and an [[attach]] counts once: the identity is the same
// as with either alone.
func TestAttachedListChangesHistoryIdentityKeepingTerms(t *testing.T) {
	const terraform = "arn:aws:iam::1:user/terraform"
	dir := t.TempDir()
	export, attach := filepath.Join(dir, "iac.ndjson"), filepath.Join(dir, "attach.toml")
	os.WriteFile(export, []byte(`{"list_id":"iac","type":"detection","name":"IaC","namespace_type":"single"}
{"item_id":"tf","list_id":"iac","type":"simple","name":"Terraform","namespace_type":"single","entries":[{"field":"aws.cloudtrail.user_identity.arn","operator":"included","type":"match","value":"`+terraform+`"}]}
`), 0o600)
	os.WriteFile(attach, []byte("[[attach]]\nlist_id = \"iac\"\nrule_id = \"*\"\n"), 0o600)
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// build runs the seed rules, their own exceptions_list naming iac or
	// not, with the given exception files.
	build := func(ownList bool, files ...string) *Engine {
		t.Helper()
		rs, err := conf.LoadRules(cloudtrail.NewSchema(), "../conf/rules")
		if err != nil {
			t.Fatal(err)
		}
		if ownList {
			for _, r := range rs.Rules {
				r.ExceptionsList = []conf.ListRef{{ListID: "iac"}}
			}
		}
		var x *conf.Exceptions
		if len(files) > 0 {
			if x, _, err = conf.LoadExceptionsFor(rs, files...); err != nil {
				t.Fatal(err)
			}
		}
		e, err := New(rs, Options{State: st, TimeSource: EventTime, Exceptions: x})
		if err != nil {
			t.Fatal(err)
		}
		if len(e.histories) != 1 || e.histories[0].name != "de0e9ed8-b68f-4249-957a-2c2bbdbd1c1b" {
			t.Fatalf("histories %+v, want the policy rule's", e.histories)
		}
		return e
	}
	newOf := func(e *Engine, at string, arns ...string) []string {
		t.Helper()
		var recs []Record
		for _, a := range arns {
			recs = append(recs, rec(t, at, []string{a}, ""))
		}
		res, err := e.ProcessBatch(recs)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, nt := range newTerms(res) {
			out = append(out, nt...)
		}
		slices.Sort(out)
		return out
	}
	plain := build(false)
	if got := newOf(plain, "2026-11-20T10:00:00Z", "alice", terraform); !slices.Equal(got, []string{"alice", terraform}) {
		t.Fatalf("no exceptions: new %v", got)
	}
	attached := build(false, export, attach)
	if attached.histories[0].identity == plain.histories[0].identity {
		t.Error("attaching a list left the history's identity as it was")
	}
	for _, e := range []*Engine{build(true, export), build(true, export, attach)} {
		if e.histories[0].identity != attached.histories[0].identity {
			t.Errorf("the list named in exceptions_list (and attached) gives identity %s, attached alone %s", e.histories[0].identity, attached.histories[0].identity)
		}
	}
	// alice was seen before the attachment: not new. terraform is excepted;
	// carol is new, and so are dave and terraform-2 (the item's match is
	// exact) in the next batch.
	if got := newOf(attached, "2026-11-20T11:00:00Z", "alice", terraform, "carol"); !slices.Equal(got, []string{"carol"}) {
		t.Errorf("attached: new %v, want carol only", got)
	}
	if got := newOf(attached, "2026-11-20T11:30:00Z", "dave", terraform+"-2"); !slices.Equal(got, []string{terraform + "-2", "dave"}) {
		t.Errorf("attached, second batch: new %v", got)
	}
	// Detached: carol and dave, seen under the attachment, are not new;
	// terraform's term from before the attachment is kept too.
	if got := newOf(build(false), "2026-11-20T12:00:00Z", "alice", "carol", "dave", terraform); len(got) != 0 {
		t.Errorf("detached: new %v, want none", got)
	}
}
