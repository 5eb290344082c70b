package cloudtrail

import (
	"reflect"
	"testing"
)

// TestUserAgentAsElasticsearch holds the user agent parsing to the cases
// of Elasticsearch's user_agent processor tests (UserAgentProcessorTests,
// without device types, which the AWS integration does not ask for) and to
// user agents CloudTrail records carry, with what the AWS integration's
// pipeline test fixtures show for them.
func TestUserAgentAsElasticsearch(t *testing.T) {
	cases := []struct {
		in   string
		want userAgent
	}{
		// Elasticsearch's processor tests.
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_2) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/33.0.1750.149 Safari/537.36",
			userAgent{name: "Chrome", version: "33.0.1750.149", hasOS: true, osName: "Mac OS X", osVersion: "10.9.2", osFull: "Mac OS X 10.9.2", deviceName: "Mac"}},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0.4280.141 Safari/537.36",
			userAgent{name: "Chrome", version: "87.0.4280.141", hasOS: true, osName: "Windows", osVersion: "10", osFull: "Windows 10", deviceName: "Other"}},
		{"Mozilla/5.0 (Linux; U; Android 3.0; en-us; Xoom Build/HRI39) AppleWebKit/525.10+ (KHTML, like Gecko) Version/3.0.4 Mobile Safari/523.12.2",
			userAgent{name: "Android", version: "3.0", hasOS: true, osName: "Android", osVersion: "3.0", osFull: "Android 3.0", deviceName: "Motorola Xoom"}},
		{"Mozilla/5.0 (compatible; EasouSpider; +http://www.easou.com/search/spider.html)",
			userAgent{name: "EasouSpider", deviceName: "Spider"}},
		{"Mozilla/5.0 (iPad; CPU OS 12_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.1 Mobile/15E148 Safari/604.1",
			userAgent{name: "Mobile Safari", version: "12.1", hasOS: true, osName: "iOS", osVersion: "12.2", osFull: "iOS 12.2", deviceName: "iPad"}},
		{"Something I made up v42.0.1", userAgent{name: "Other", deviceName: "Other"}},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
			userAgent{name: "Firefox", version: "128.0", hasOS: true, osName: "Windows", osVersion: "10", osFull: "Windows 10", deviceName: "Other"}},
		// Elasticsearch releases before the fix of elastic/elasticsearch#116950
		// write "24.0." here (an older fixture of the integration shows it);
		// the current processor's test (Firefox 128 above) writes no
		// trailing dot, and so does trailwatch.
		{"Mozilla/5.0 (Windows NT 6.1; WOW64; rv:24.0) Gecko/20100101 Firefox/24.0",
			userAgent{name: "Firefox", version: "24.0", hasOS: true, osName: "Windows", osVersion: "7", osFull: "Windows 7", deviceName: "Other"}},
		// CloudTrail user agents, as the integration's fixtures index them.
		{"aws-cli/2.18.17 md/awscrt#0.22.0 ua/2.0 os/linux#6.8.0-1016-aws md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 md/prompt#off md/command#ssm.send-command",
			userAgent{name: "aws-cli", version: "2.18.17", hasOS: true, osName: "Linux", deviceName: "Other"}},
		{"aws-cli/1.16.248 Python/3.4.7 Linux/4.9.184-0.1.ac.235.83.329.metal1.x86_64 botocore/1.12.239",
			userAgent{name: "aws-cli", version: "1.16.248", hasOS: true, osName: "Linux", osVersion: "4.9.184", osFull: "Linux 4.9.184", deviceName: "Spider"}},
	}
	for _, c := range cases {
		got := *parseUserAgent(c.in)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s\n got %+v\nwant %+v", c.in, got, c.want)
		}
	}
}

// TestUserAgentCacheOwnsItsStrings: a user agent read in place is a view of
// the record's bytes (a Fluent Bit chunk, freed after its flush), and the
// parse cache outlives the record: what it keeps must not change when those
// bytes do. (A cached name that was a view of a freed chunk crashed a real
// Fluent Bit under load.)
func TestUserAgentCacheOwnsItsStrings(t *testing.T) {
	buf := []byte("trailwatch-cache-probe/7.1 (Linux) aws-cli/2.0.1 os/linux")
	in := bytesString(buf)
	want := *parseUserAgent(in)
	if want.name != "aws-cli" {
		t.Fatalf("parsed %+v", want)
	}
	for i := range buf {
		buf[i] = 'X' // the chunk's memory reused
	}
	got := *parseUserAgent("trailwatch-cache-probe/7.1 (Linux) aws-cli/2.0.1 os/linux") // a cache hit
	if !reflect.DeepEqual(got, want) || got.name != "aws-cli" || got.version != "2.0.1" {
		t.Errorf("cached parse changed with the record's bytes: %+v, want %+v", got, want)
	}
}
