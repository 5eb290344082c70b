package engine

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/cloudtrail/doc"
	"github.com/trailwatch/trailwatch/store"
)

// fakeState answers every term as new and keeps nothing: fuzzing exercises
// the record path, not the file.
type fakeState struct{}

func (fakeState) Adopt([]store.History) (int, error) { return 0, nil }

func (fakeState) Commit(b store.Batch) (store.CommitResult, error) {
	var alerts []store.Alert
	if b.Emit != nil {
		var err error
		if alerts, err = b.Emit(store.AllNew(b.Terms)); err != nil {
			return store.CommitResult{}, err
		}
	}
	res := store.CommitResult{Seqs: make([]uint64, len(alerts))}
	for i := range alerts {
		res.Seqs[i] = uint64(i + 1)
	}
	return res, nil
}

func fuzzEngine(f testing.TB) *Engine {
	rs, _ := corpusRules(f)
	e, err := New(rs, Options{State: fakeState{}, Now: func() time.Time { return time.Unix(1790000000, 0) }})
	if err != nil {
		f.Fatal(err)
	}
	return e
}

var fuzzSeeds = []string{
	`{"eventSource":"bedrock.amazonaws.com","eventName":"PutResourcePolicy","eventID":"1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","accessKeyId":"AKIA1"},"sourceIPAddress":"1.2.3.4","requestParameters":{"a":[1,2.5,null,"-",{"b":true}]}}`,
	`{"Records":[{"eventSource":"iam.amazonaws.com","eventName":"CreateUser","requestParameters":{"userName":"x"},"resources":[{"ARN":"arn:aws:iam::1:user/x","accountId":"1","type":"AWS::IAM::User"}]}]}`,
	`{"detail-type":"AWS API Call via CloudTrail","detail":{"eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","responseElements":{"ConsoleLogin":"Failure"},"additionalEventData":{"MFAUsed":"No"}}}`,
	`{"log":"{\"eventSource\":\"sts.amazonaws.com\",\"eventName\":\"AssumeRole\",\"userIdentity\":{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/r/s\",\"sessionContext\":{\"sessionIssuer\":{\"userName\":\"r\"}}}}"}`,
	`{"event":{"provider":"iam.amazonaws.com","action":"CreateAccessKey","outcome":"success"},"user":{"name":"u"}}`,
	`{"eventSource":1,"eventName":["x"],"eventTime":"not a time","tlsDetails":{"tlsVersion":"TLSv1.2"}}`,
	`{"Records":[42,{"eventSource":"bedrock.amazonaws.com","eventName":"PutUseCaseForModelAccess"},{"no":"event"}],"Records2":[]}`,
	`{"Records":{"not":"an array"},"eventSource":"x"}`,
}

// FuzzRecordJSON: any JSON record, through shape detection, every field's
// resolution and the alert documents: no panic, no hang.
func FuzzRecordJSON(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	e := fuzzEngine(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := doc.ParseJSON(data)
		if err != nil {
			return
		}
		if _, err := e.ProcessBatch([]Record{{Node: n}}); err != nil {
			t.Fatal(err)
		}
		cloudtrail.Split(n, func(ev *doc.Node, ecs bool) {
			var x *cloudtrail.Event
			if ecs {
				x = cloudtrail.NewECSEvent(ev, time.Now())
			} else {
				x = cloudtrail.NewEvent(ev, time.Now(), nil)
			}
			for _, name := range cloudtrail.ResolvedFields() {
				x.Values(e.schema.Field(name))
			}
			ECSDocument(e.schema, x)
		}, nil)
	})
}

// FuzzRecordMsgpack: any MessagePack record body, read in place (and
// through the tree when needed): no panic, no hang.
func FuzzRecordMsgpack(f *testing.F) {
	for _, s := range fuzzSeeds {
		var m any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			f.Fatal(err)
		}
		b, err := msgp.AppendIntf(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	e := fuzzEngine(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if msgp.NextType(data) != msgp.MapType {
			return
		}
		if _, err := e.ProcessBatch([]Record{{Msgpack: data}}); err != nil {
			t.Fatal(err)
		}
	})
}
