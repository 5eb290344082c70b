package enrich

import (
	"errors"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/matcher"
)

func nameMap(kv ...string) mmdbtype.Map {
	m := mmdbtype.Map{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[mmdbtype.String(kv[i])] = mmdbtype.String(kv[i+1])
	}
	return m
}

func place(code, en string, other ...string) mmdbtype.Map {
	m := mmdbtype.Map{"names": nameMap(append([]string{"en", en}, other...)...)}
	if code != "" {
		m["iso_code"] = mmdbtype.String(code)
	}
	return m
}

func continent(code, en string) mmdbtype.Map {
	return mmdbtype.Map{"code": mmdbtype.String(code), "names": nameMap("en", en, "de", "x-"+en)}
}

func location(lat, lon float64) mmdbtype.Map {
	return mmdbtype.Map{
		"latitude":        mmdbtype.Float64(lat),
		"longitude":       mmdbtype.Float64(lon),
		"accuracy_radius": mmdbtype.Uint16(1000),
		"time_zone":       mmdbtype.String("UTC"),
	}
}

// Fixture records, keyed by network.
var (
	cityRecords = map[string]mmdbtype.Map{
		// A full US record, with names in several languages.
		"203.0.113.0/24": {
			"continent":          continent("NA", "North America"),
			"country":            place("US", "United States", "de", "USA", "ja", "アメリカ"),
			"registered_country": place("US", "United States"),
			"subdivisions":       mmdbtype.Slice{place("VA", "Virginia", "fr", "Virginie")},
			"city":               place("", "Ashburn", "ru", "Ашберн"),
			"location":           location(39.0469, -77.4903),
			"postal":             mmdbtype.Map{"code": mmdbtype.String("20149")},
		},
		// Two subdivisions: the region is the most specific (last) one.
		"192.0.2.0/24": {
			"continent": continent("EU", "Europe"),
			"country":   place("GB", "United Kingdom"),
			"subdivisions": mmdbtype.Slice{
				place("ENG", "England"),
				place("WND", "Wandsworth"),
			},
			"city":     place("", "London"),
			"location": location(51.5142, -0.0931),
		},
		// An IPv6 network.
		"2a05:d014::/32": {
			"continent":    continent("EU", "Europe"),
			"country":      place("DE", "Germany"),
			"subdivisions": mmdbtype.Slice{place("HE", "Hesse")},
			"city":         place("", "Frankfurt am Main"),
			"location":     location(50.1188, 8.6843),
		},
		// Sparse: no English city name, a subdivision without an ISO code,
		// and a location without a longitude.
		"198.51.100.0/24": {
			"continent":    continent("AS", "Asia"),
			"country":      place("JP", "Japan"),
			"subdivisions": mmdbtype.Slice{mmdbtype.Map{"names": nameMap("en", "Tokyo")}},
			"city":         mmdbtype.Map{"names": nameMap("ja", "東京")},
			"location":     mmdbtype.Map{"latitude": mmdbtype.Float64(35.6)},
		},
		// A location with whole-number coordinates, and no country: no
		// region ISO code can be built.
		"100.64.0.0/24": {
			"subdivisions": mmdbtype.Slice{place("XX", "Somewhere")},
			"location":     location(10, -20),
		},
	}
	asnRecords = map[string]mmdbtype.Map{
		"198.51.100.0/24": {
			"autonomous_system_number":       mmdbtype.Uint32(16509),
			"autonomous_system_organization": mmdbtype.String("AMAZON-02"),
		},
		"2a05:d014::/32": {
			"autonomous_system_number":       mmdbtype.Uint32(16509),
			"autonomous_system_organization": mmdbtype.String("AMAZON-02"),
		},
		// A number without an organization.
		"203.0.113.0/24": {
			"autonomous_system_number": mmdbtype.Uint32(4200000000),
		},
	}
)

// writeDB builds a MaxMind DB of the given type into dir.
func writeDB(t testing.TB, dir, name, dbType string, ipVersion int, recs map[string]mmdbtype.Map) string {
	t.Helper()
	return writeDBOpts(t, dir, name, mmdbwriter.Options{DatabaseType: dbType, IPVersion: ipVersion}, recs)
}

// writeDBOpts is writeDB with the aliasing option too.
func writeDBOpts(t testing.TB, dir, name string, opts mmdbwriter.Options, recs map[string]mmdbtype.Map) string {
	t.Helper()
	ipVersion := opts.IPVersion
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            opts.DatabaseType,
		DisableIPv4Aliasing:     opts.DisableIPv4Aliasing,
		Description:             map[string]string{"en": "trailwatch test " + opts.DatabaseType},
		Languages:               []string{"en", "de", "fr", "ja", "ru"},
		IPVersion:               ipVersion,
		RecordSize:              28,
		IncludeReservedNetworks: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for cidr, rec := range recs {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if ipVersion == 4 && network.IP.To4() == nil {
			continue
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

type fixture struct {
	city, asn string
}

func newFixture(t testing.TB) fixture {
	dir := t.TempDir()
	return fixture{
		city: writeDB(t, dir, "GeoLite2-City.mmdb", "GeoLite2-City", 6, cityRecords),
		asn:  writeDB(t, dir, "GeoLite2-ASN.mmdb", "GeoLite2-ASN", 6, asnRecords),
	}
}

func openFixture(t testing.TB) *DB {
	f := newFixture(t)
	db, err := Open(f.city, f.asn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	return db
}

func str(s string) matcher.Value { return matcher.Value{Text: s, Kind: matcher.KindString} }
func num(s string) matcher.Value { return matcher.Value{Text: s, Kind: matcher.KindNumber} }

var ashburn = map[string]matcher.Value{
	FieldContinentName:  str("North America"),
	FieldCountryISOCode: str("US"),
	FieldCountryName:    str("United States"),
	FieldRegionISOCode:  str("US-VA"),
	FieldRegionName:     str("Virginia"),
	FieldCityName:       str("Ashburn"),
	FieldLocationLat:    num("39.0469"),
	FieldLocationLon:    num("-77.4903"),
	FieldASNumber:       num("4200000000"),
}

func TestLookup(t *testing.T) {
	db := openFixture(t)
	tests := []struct {
		ip   string
		want map[string]matcher.Value
	}{
		{"203.0.113.7", ashburn},
		{"203.0.113.255", ashburn},
		{"::ffff:203.0.113.7", ashburn},
		{"::ffff:cb00:7107%eth0", ashburn},
		{"192.0.2.1", map[string]matcher.Value{
			FieldContinentName:  str("Europe"),
			FieldCountryISOCode: str("GB"),
			FieldCountryName:    str("United Kingdom"),
			FieldRegionISOCode:  str("GB-WND"),
			FieldRegionName:     str("Wandsworth"),
			FieldCityName:       str("London"),
			FieldLocationLat:    num("51.5142"),
			FieldLocationLon:    num("-0.0931"),
		}},
		{"2a05:d014:1:2::3", map[string]matcher.Value{
			FieldContinentName:  str("Europe"),
			FieldCountryISOCode: str("DE"),
			FieldCountryName:    str("Germany"),
			FieldRegionISOCode:  str("DE-HE"),
			FieldRegionName:     str("Hesse"),
			FieldCityName:       str("Frankfurt am Main"),
			FieldLocationLat:    num("50.1188"),
			FieldLocationLon:    num("8.6843"),
			FieldASNumber:       num("16509"),
			FieldASOrganization: str("AMAZON-02"),
		}},
		{"198.51.100.20", map[string]matcher.Value{
			FieldContinentName:  str("Asia"),
			FieldCountryISOCode: str("JP"),
			FieldCountryName:    str("Japan"),
			FieldRegionName:     str("Tokyo"),
			FieldASNumber:       num("16509"),
			FieldASOrganization: str("AMAZON-02"),
		}},
		{"::ffff:198.51.100.20", map[string]matcher.Value{
			FieldContinentName:  str("Asia"),
			FieldCountryISOCode: str("JP"),
			FieldCountryName:    str("Japan"),
			FieldRegionName:     str("Tokyo"),
			FieldASNumber:       num("16509"),
			FieldASOrganization: str("AMAZON-02"),
		}},
		{"100.64.0.9", map[string]matcher.Value{
			FieldRegionName:  str("Somewhere"),
			FieldLocationLat: num("10"),
			FieldLocationLon: num("-20"),
		}},
		// Misses: unknown public, private, loopback, unknown IPv6, and the
		// IPv4-compatible form that is not an IPv4-mapped address.
		{"8.8.8.8", nil},
		{"10.0.0.1", nil},
		{"127.0.0.1", nil},
		{"::1", nil},
		{"2600:1f18::1", nil},
		{"203.0.114.1", nil},
	}
	// Forwards and backwards, so that each record is decoded after
	// different ones and nothing carries over from one lookup to the next.
	for pass := range 2 {
		for i := range tests {
			tt := tests[i]
			if pass == 1 {
				tt = tests[len(tests)-1-i]
			}
			got := db.Lookup(netip.MustParseAddr(tt.ip))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Lookup(%s)\n got  %v\n want %v", tt.ip, got, tt.want)
			}
		}
	}
}

func TestLookupInvalidAndNil(t *testing.T) {
	db := openFixture(t)
	if got := db.Lookup(netip.Addr{}); got != nil {
		t.Errorf("Lookup(zero Addr) = %v, want nil", got)
	}
	var nilDB *DB
	if got := nilDB.Lookup(netip.MustParseAddr("203.0.113.7")); got != nil {
		t.Errorf("nil DB Lookup = %v, want nil", got)
	}
	if err := nilDB.Close(); err != nil {
		t.Errorf("nil DB Close = %v", err)
	}
	var en cloudtrail.Enricher = db
	if got := en.Lookup(netip.MustParseAddr("203.0.113.7")); got[FieldCityName] != str("Ashburn") {
		t.Errorf("through cloudtrail.Enricher: %v", got)
	}
}

func TestLookupFreshMaps(t *testing.T) {
	db := openFixture(t)
	ip := netip.MustParseAddr("203.0.113.7")
	a := db.Lookup(ip)
	a[FieldCityName] = str("changed")
	if b := db.Lookup(ip); b[FieldCityName] != str("Ashburn") {
		t.Errorf("a caller's change leaked into a later lookup: %v", b)
	}
}

func TestOpenOneDatabase(t *testing.T) {
	f := newFixture(t)

	city, err := Open(f.city, "")
	if err != nil {
		t.Fatal(err)
	}
	defer city.Close()
	got := city.Lookup(netip.MustParseAddr("2a05:d014::1"))
	if got[FieldCityName] != str("Frankfurt am Main") {
		t.Errorf("city only: %v", got)
	}
	if _, ok := got[FieldASNumber]; ok {
		t.Errorf("city only DB set %s: %v", FieldASNumber, got)
	}
	if got := city.Lookup(netip.MustParseAddr("2a05:d015::1")); got != nil {
		t.Errorf("city only miss: %v", got)
	}

	asn, err := Open("", f.asn)
	if err != nil {
		t.Fatal(err)
	}
	defer asn.Close()
	want := map[string]matcher.Value{FieldASNumber: num("16509"), FieldASOrganization: str("AMAZON-02")}
	if got := asn.Lookup(netip.MustParseAddr("198.51.100.1")); !reflect.DeepEqual(got, want) {
		t.Errorf("ASN only: got %v, want %v", got, want)
	}
	if got := asn.Lookup(netip.MustParseAddr("192.0.2.1")); got != nil {
		t.Errorf("ASN only miss: %v", got)
	}

	none, err := Open("", "")
	if none != nil || err != nil {
		t.Errorf(`Open("", "") = %v, %v; want nil, nil`, none, err)
	}
}

func TestOpenOtherDatabaseTypes(t *testing.T) {
	dir := t.TempDir()
	// An ISP database carries the same ASN fields.
	isp := writeDB(t, dir, "GeoIP2-ISP.mmdb", "GeoIP2-ISP", 6, map[string]mmdbtype.Map{
		"198.51.100.0/24": {
			"autonomous_system_number":       mmdbtype.Uint32(16509),
			"autonomous_system_organization": mmdbtype.String("AMAZON-02"),
			"isp":                            mmdbtype.String("Amazon.com"),
		},
	})
	// An IPv4-only City database: IPv6 lookups find nothing and do not fail.
	city4 := writeDB(t, dir, "GeoIP2-City-v4.mmdb", "GeoIP2-City", 4, cityRecords)
	db, err := Open(city4, isp)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := db.Lookup(netip.MustParseAddr("198.51.100.1"))
	if got[FieldASNumber] != num("16509") || got[FieldASOrganization] != str("AMAZON-02") || got[FieldCountryISOCode] != str("JP") {
		t.Errorf("ISP and IPv4 City: got %v", got)
	}
	if got := db.Lookup(netip.MustParseAddr("::ffff:203.0.113.7")); got[FieldRegionISOCode] != str("US-VA") {
		t.Errorf("mapped address in an IPv4 database: %v", got)
	}
	if got := db.Lookup(netip.MustParseAddr("2a05:d014::1")); got != nil {
		t.Errorf("IPv6 address in an IPv4 database: %v", got)
	}
}

// TestCountryDatabase: Elasticsearch's geoip processor takes a Country
// database where a City one goes, and writes the continent and country;
// trailwatch refused it.
func TestCountryDatabase(t *testing.T) {
	dir := t.TempDir()
	country := writeDB(t, dir, "GeoLite2-Country.mmdb", "GeoLite2-Country", 6, map[string]mmdbtype.Map{
		"198.51.100.0/24": {"continent": continent("EU", "Europe"), "country": place("GB", "United Kingdom")},
	})
	db, err := Open(country, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := db.Lookup(netip.MustParseAddr("198.51.100.1"))
	if got[FieldCountryISOCode] != str("GB") || got[FieldContinentName] != str("Europe") || len(got) != 3 {
		t.Errorf("country database: %v, want continent_name, country_iso_code and country_name", got)
	}
}

func TestLookupWithoutIPv4Aliases(t *testing.T) {
	// Without aliases, ::ffff:0:0/96 leads nowhere in the tree: mapped
	// addresses are found only because Lookup unmaps them first.
	dir := t.TempDir()
	city := writeDBOpts(t, dir, "city.mmdb", mmdbwriter.Options{
		DatabaseType: "GeoLite2-City", IPVersion: 6, DisableIPv4Aliasing: true,
	}, cityRecords)
	asn := writeDBOpts(t, dir, "asn.mmdb", mmdbwriter.Options{
		DatabaseType: "GeoLite2-ASN", IPVersion: 6, DisableIPv4Aliasing: true,
	}, asnRecords)
	db, err := Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ip := range []string{"203.0.113.7", "::ffff:203.0.113.7"} {
		if got := db.Lookup(netip.MustParseAddr(ip)); !reflect.DeepEqual(got, ashburn) {
			t.Errorf("Lookup(%s) = %v, want %v", ip, got, ashburn)
		}
	}
}

func TestLookupBadRecords(t *testing.T) {
	dir := t.TempDir()
	// Records of the wrong shape: the database they come from gives nothing,
	// the other one still answers.
	city := writeDB(t, dir, "city.mmdb", "GeoLite2-City", 6, map[string]mmdbtype.Map{
		"198.51.100.0/24": {
			"country":  mmdbtype.String("US"),
			"location": location(1.5, 2.5),
		},
		"203.0.113.0/24": {
			"subdivisions": mmdbtype.Map{"iso_code": mmdbtype.String("VA")},
		},
	})
	asn := writeDB(t, dir, "asn.mmdb", "GeoLite2-ASN", 6, map[string]mmdbtype.Map{
		"198.51.100.0/24": {
			"autonomous_system_number":       mmdbtype.String("16509"),
			"autonomous_system_organization": mmdbtype.String("AMAZON-02"),
		},
		"203.0.113.0/24": {
			"autonomous_system_number": mmdbtype.Uint32(64500),
		},
	})
	db, err := Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Lookup(netip.MustParseAddr("198.51.100.1")); got != nil {
		t.Errorf("bad records: got %v, want nil", got)
	}
	want := map[string]matcher.Value{FieldASNumber: num("64500")}
	if got := db.Lookup(netip.MustParseAddr("203.0.113.1")); !reflect.DeepEqual(got, want) {
		t.Errorf("bad city record, good ASN record: got %v, want %v", got, want)
	}
}

func TestLookupCorruptData(t *testing.T) {
	// Damage the data section of a valid database in many ways: Lookup may
	// find less, but must not panic or fail.
	f := newFixture(t)
	orig, err := os.ReadFile(f.city)
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte("\xab\xcd\xefMaxMind.com")
	meta := strings.LastIndex(string(orig), string(marker))
	if meta < 0 {
		t.Fatal("no metadata marker")
	}
	ips := []netip.Addr{
		netip.MustParseAddr("203.0.113.7"),
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("2a05:d014::1"),
		netip.MustParseAddr("198.51.100.1"),
	}
	dir := t.TempDir()
	for i := 0; i < meta; i += 7 {
		data := append([]byte(nil), orig...)
		data[i] ^= 0xff
		path := filepath.Join(dir, "corrupt.mmdb")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := Open(path, "")
		if err != nil {
			continue
		}
		for _, ip := range ips {
			db.Lookup(ip)
		}
		db.Close()
	}
}

func TestOpenErrors(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "GeoLite2-City.mmdb")
	junk := filepath.Join(dir, "junk.mmdb")
	if err := os.WriteFile(junk, []byte("this is not a MaxMind database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	country := writeDB(t, dir, "GeoLite2-Country.mmdb", "GeoLite2-Country", 6, nil)

	tests := []struct {
		name      string
		city, asn string
		want      []string
	}{
		{"missing city", missing, f.asn, []string{"city database", missing, "does not exist"}},
		{"missing asn", f.city, missing, []string{"ASN database", missing, "does not exist"}},
		{"directory", dir, "", []string{"city database", dir, "is a directory"}},
		{"junk", junk, "", []string{"city database", junk, "not a MaxMind DB"}},
		{"junk asn", "", junk, []string{"ASN database", junk, "not a MaxMind DB"}},
		{"empty", "", empty, []string{"ASN database", empty, "not a MaxMind DB"}},
		{"asn as city", f.asn, "", []string{"city database", f.asn, `"GeoLite2-ASN"`, "want a City (or Country) database", "swapped"}},
		{"city as asn", "", f.city, []string{"ASN database", f.city, `"GeoLite2-City"`, "want an ASN database", "swapped"}},
		{"swapped", f.asn, f.city, []string{"city database", f.asn, "swapped"}},
		{"country as asn", "", country, []string{"ASN database", country, `"GeoLite2-Country"`, "want an ASN database", "swapped"}},
	}
	for _, tt := range tests {
		db, err := Open(tt.city, tt.asn)
		if err == nil {
			db.Close()
			t.Errorf("%s: Open succeeded", tt.name)
			continue
		}
		if db != nil {
			t.Errorf("%s: Open returned a DB with error %v", tt.name, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", tt.name, err, w)
			}
		}
	}

	_, err := Open(missing, "")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file error %v is not fs.ErrNotExist", err)
	}
}

func TestClose(t *testing.T) {
	f := newFixture(t)
	db, err := Open(f.city, f.asn)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := db.Lookup(netip.MustParseAddr("203.0.113.7")); got != nil {
		t.Errorf("Lookup after Close = %v, want nil", got)
	}
}

func TestLookupConcurrent(t *testing.T) {
	db := openFixture(t)
	ips := []netip.Addr{
		netip.MustParseAddr("203.0.113.7"),
		netip.MustParseAddr("198.51.100.1"),
		netip.MustParseAddr("2a05:d014::1"),
		netip.MustParseAddr("::ffff:192.0.2.9"),
		netip.MustParseAddr("10.1.2.3"),
	}
	want := make([]map[string]matcher.Value, len(ips))
	for i, ip := range ips {
		want[i] = db.Lookup(ip)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 200 {
				i := (g + n) % len(ips)
				if got := db.Lookup(ips[i]); !reflect.DeepEqual(got, want[i]) {
					t.Errorf("Lookup(%s) = %v, want %v", ips[i], got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkLookup(b *testing.B) {
	db := openFixture(b)
	ips := []netip.Addr{
		netip.MustParseAddr("203.0.113.7"),
		netip.MustParseAddr("198.51.100.1"),
		netip.MustParseAddr("2a05:d014::1"),
		netip.MustParseAddr("8.8.8.8"),
	}
	b.Run("hit", func(b *testing.B) {
		ip := ips[0]
		b.ReportAllocs()
		for b.Loop() {
			if db.Lookup(ip) == nil {
				b.Fatal("miss")
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		ip := ips[3]
		b.ReportAllocs()
		for b.Loop() {
			if db.Lookup(ip) != nil {
				b.Fatal("hit")
			}
		}
	})
	b.Run("mixed-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				db.Lookup(ips[i%len(ips)])
				i++
			}
		})
	})
}

// TestDatabaseFilesHostile: a FIFO named as a database hung the start
// (os.Open waits for a writer), and a database rewritten in place under
// its mapping killed the process at the next lookup (SIGBUS, which no
// recover catches). A database is now read into memory, regular files
// only, to a bound.
func TestDatabaseFilesHostile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "city.mmdb")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := Open(p, ""); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open(FIFO) = %v, want it refused by name", err)
		}
	case <-time.After(5 * time.Second):
		f, _ := os.OpenFile(p, os.O_WRONLY, 0) // let the goroutine go
		f.Close()
		t.Fatal("Open of a FIFO hangs")
	}

	f := newFixture(t)
	db, err := Open(f.city, f.asn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := db.Lookup(netip.MustParseAddr("203.0.113.7"))
	if len(want) == 0 {
		t.Fatal("the fixture has no record for 203.0.113.7")
	}
	for _, path := range []string{f.city, f.asn} {
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
	}
	if got := db.Lookup(netip.MustParseAddr("203.0.113.7")); !maps.Equal(got, want) {
		t.Errorf("after the files were rewritten in place: %v, want %v (the copy read at open)", got, want)
	}
}
