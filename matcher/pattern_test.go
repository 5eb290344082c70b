package matcher

import "testing"

func TestLikeAndFold(t *testing.T) {
	cases := []struct {
		pattern string
		fold    bool
		yes, no []string
	}{
		{"AKIA*", false, []string{"AKIA123", "AKIA"}, []string{"akia123", "ASIA1"}},
		{"a?c", false, []string{"abc", "aéc"}, []string{"ac", "abbc", "ABC"}},
		{"a?c", true, []string{"ABC", "aBc"}, []string{"ac"}},
		{"*kali*", true, []string{"distrib#KALI", "x-Kali-y"}, []string{"kal"}},
		{`a\*b`, false, []string{"a*b"}, []string{"axb"}},
		{`a\?b*`, false, []string{"a?bzz"}, []string{"axb"}},
		{"*a*b*a*", false, []string{"aba", "xxaxxbxxaxx"}, []string{"ab", "baab"}},
		{"İ*", true, []string{"İstanbul"}, nil},
	}
	for _, tc := range cases {
		p := Like(tc.pattern, tc.fold)
		for _, s := range tc.yes {
			if !p.Test(&Value{Text: s}) {
				t.Errorf("Like(%q, %v) does not match %q", tc.pattern, tc.fold, s)
			}
		}
		for _, s := range tc.no {
			if p.Test(&Value{Text: s}) {
				t.Errorf("Like(%q, %v) matches %q", tc.pattern, tc.fold, s)
			}
		}
	}
	if !FoldEqual("Kali").Test(&Value{Text: "KALI"}) || FoldEqual("Kali").Test(&Value{Text: "Kal"}) {
		t.Error("FoldEqual")
	}
}

// TestLikeIsNotExponential: a pattern of many stars against a long value
// that fails at its end takes linear-backtracking time, not exponential.
func TestLikeIsNotExponential(t *testing.T) {
	p := Like("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", false)
	s := ""
	for range 5000 {
		s += "a"
	}
	if p.Test(&Value{Text: s}) {
		t.Error("matched")
	}
	q := Like("*a?a*a?a*a?a*b", true)
	if q.Test(&Value{Text: s}) {
		t.Error("matched")
	}
}

func TestRegexpAsLucene(t *testing.T) {
	cases := []struct {
		pattern string
		fold    bool
		yes, no []string
	}{
		{"arn:aws:s3:::[^/]+/.*?(how|decrypt|ransom).*", true,
			[]string{"arn:aws:s3:::bucket/HOW_TO_DECRYPT.txt", "arn:aws:s3:::b/x/ransom"}, []string{"arn:aws:s3:::bucket", "arn:aws:s3:::b/notes.txt"}},
		{".*(AWSLogs|CloudTrail).*", true, []string{"arn:aws:s3:::b/awslogs/1"}, []string{"arn:aws:s3:::b/x"}},
		{"ab+?", false, []string{"a", "ab", "abbb"}, []string{"b"}}, // Lucene: a(b+)?
		{"a{2,3}", false, []string{"aa", "aaa"}, []string{"a", "aaaa"}},
		{"a.b", false, []string{"a\nb", "axb"}, []string{"ab"}},
		{`a\.b`, false, []string{"a.b"}, []string{"axb"}},
		{"[a-c]+", false, []string{"abc"}, []string{"abd"}},
		{"^a$", false, []string{"^a$"}, []string{"a"}},
		{"x", false, []string{"x"}, []string{"xx", "ax"}}, // the whole value
	}
	for _, tc := range cases {
		p, err := Regexp(tc.pattern, tc.fold)
		if err != nil {
			t.Fatalf("%q: %v", tc.pattern, err)
		}
		for _, s := range tc.yes {
			if !p.Test(&Value{Text: s}) {
				t.Errorf("Regexp(%q) does not match %q", tc.pattern, s)
			}
		}
		for _, s := range tc.no {
			if p.Test(&Value{Text: s}) {
				t.Errorf("Regexp(%q) matches %q", tc.pattern, s)
			}
		}
	}
	for _, bad := range []string{"a~b", "a&b", "<1-5>", "a@", "(a", "a)", "[ab", `a\`, "a{x}"} {
		if _, err := Regexp(bad, false); err == nil {
			t.Errorf("Regexp(%q): no error", bad)
		}
	}
}

func TestLikeNoEscape(t *testing.T) {
	p := LikeNoEscape(`C:\Windows\*`, false)
	if !p.Test(&Value{Text: `C:\Windows\x`}) || p.Test(&Value{Text: `C:\Windowsx`}) {
		t.Error(`a backslash in an EQL like pattern is an ordinary character`)
	}
}
