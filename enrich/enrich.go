// Package enrich fills the GeoIP and ASN fields of an event from MaxMind
// databases, as the geoip processors of Elastic's AWS integration ingest
// pipeline do for source.ip.
//
// The City database (GeoIP2-City or GeoLite2-City) gives
//
//	source.geo.continent_name
//	source.geo.country_iso_code
//	source.geo.country_name
//	source.geo.region_iso_code   country ISO code + "-" + subdivision ISO code
//	source.geo.region_name
//	source.geo.city_name
//	source.geo.location.lat
//	source.geo.location.lon
//
// and the ASN database (GeoLite2-ASN, or a GeoIP2-ISP database) gives
//
//	source.as.number
//	source.as.organization.name
//
// Names are the English ("en") ones. The region is the most specific
// subdivision (the last one in the record), as Elasticsearch takes it; the
// location is set only when both latitude and longitude are present. A field
// whose value is missing from the record, or is an empty string, is left out;
// an address with no record gives no fields at all.
package enrich

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/matcher"
)

// Field names set by Lookup.
const (
	FieldContinentName  = "source.geo.continent_name"
	FieldCountryISOCode = "source.geo.country_iso_code"
	FieldCountryName    = "source.geo.country_name"
	FieldRegionISOCode  = "source.geo.region_iso_code"
	FieldRegionName     = "source.geo.region_name"
	FieldCityName       = "source.geo.city_name"
	FieldLocationLat    = "source.geo.location.lat"
	FieldLocationLon    = "source.geo.location.lon"
	FieldASNumber       = "source.as.number"
	FieldASOrganization = "source.as.organization.name"
)

// DB looks addresses up in a City database, an ASN database, or both. Its
// Lookup is safe for concurrent use; Close must not run concurrently with
// Lookup.
type DB struct {
	readers atomic.Pointer[readers]
}

type readers struct {
	city, asn *maxminddb.Reader
}

var _ cloudtrail.Enricher = (*DB)(nil)

// kind tells which database a path is meant to hold.
type kind struct {
	label string   // used in errors: "city", "ASN"
	noun  string   // "a City database", "an ASN database"
	types []string // accepted substrings of the database_type metadata
	want  string   // what a correct database looks like, for errors
}

var (
	cityKind = kind{
		label: "city",
		noun:  "a City database",
		// A Country database is one Elasticsearch's geoip processor takes
		// too (continent and country only).
		types: []string{"City", "Enterprise", "Country"},
		want:  "a City (or Country) database such as GeoLite2-City or GeoIP2-City",
	}
	asnKind = kind{
		label: "ASN",
		noun:  "an ASN database",
		types: []string{"ASN", "ISP"},
		want:  "an ASN database such as GeoLite2-ASN (or GeoIP2-ISP)",
	}
)

// Open opens the City database at cityPath and the ASN database at asnPath.
// Either path may be empty, and that database is then not used; when both
// are empty Open returns (nil, nil), and a nil *DB finds nothing. Errors name
// the file and say what is wrong with it: it does not exist, it is not a
// MaxMind DB file, or it holds the other kind of database.
func Open(cityPath, asnPath string) (*DB, error) {
	if cityPath == "" && asnPath == "" {
		return nil, nil
	}
	var r readers
	var err error
	if cityPath != "" {
		if r.city, err = open(cityPath, cityKind); err != nil {
			return nil, err
		}
	}
	if asnPath != "" {
		if r.asn, err = open(asnPath, asnKind); err != nil {
			if r.city != nil {
				_ = r.city.Close()
			}
			return nil, err
		}
	}
	db := &DB{}
	db.readers.Store(&r)
	return db, nil
}

// maxDatabase bounds a database file: MaxMind's largest City edition is
// a few hundred megabytes.
const maxDatabase = 1 << 30

func open(path string, k kind) (*maxminddb.Reader, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("enrich: %s database %q does not exist: %w", k.label, path, err)
	case err != nil:
		return nil, fmt.Errorf("enrich: %s database %q: %w", k.label, path, err)
	case st.IsDir():
		return nil, fmt.Errorf("enrich: %s database %q is a directory, not a MaxMind DB (.mmdb) file", k.label, path)
	}
	// Read into memory, not mapped: a database rewritten in place (cp,
	// curl -o) under a mapping faults the next lookup (SIGBUS), which no
	// recover catches. A FIFO or a device is refused, and no more than
	// maxDatabase bytes are read.
	data, err := conf.ReadFile(path, maxDatabase, "a MaxMind database", false)
	if err != nil {
		return nil, fmt.Errorf("enrich: %s database %q: %w", k.label, path, err)
	}
	rd, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("enrich: %s database %q is not a MaxMind DB (.mmdb) file: %w", k.label, path, err)
	}
	dt := rd.Metadata.DatabaseType
	if matches(dt, k) {
		return rd, nil
	}
	_ = rd.Close()
	hint := ""
	if other := otherKind(k); matches(dt, other) {
		hint = fmt.Sprintf(" (it is %s; were the city and ASN paths swapped?)", other.noun)
	}
	return nil, fmt.Errorf("enrich: %s database %q has database type %q, want %s%s", k.label, path, dt, k.want, hint)
}

func otherKind(k kind) kind {
	if k.label == cityKind.label {
		return asnKind
	}
	return cityKind
}

func matches(dt string, k kind) bool {
	for _, t := range k.types {
		if strings.Contains(dt, t) {
			return true
		}
	}
	return false
}

// Close releases the databases. Lookup on a closed DB finds nothing.
func (db *DB) Close() error {
	if db == nil {
		return nil
	}
	r := db.readers.Swap(nil)
	if r == nil {
		return nil
	}
	var errs []error
	if r.city != nil {
		errs = append(errs, r.city.Close())
	}
	if r.asn != nil {
		errs = append(errs, r.asn.Close())
	}
	return errors.Join(errs...)
}

// names holds the one localized name the pipeline uses.
type names struct {
	EN string `maxminddb:"en"`
}

type subdivision struct {
	ISOCode string `maxminddb:"iso_code"`
	Names   names  `maxminddb:"names"`
}

// cityRecord is the part of a City record the pipeline reads.
type cityRecord struct {
	City struct {
		Names names `maxminddb:"names"`
	} `maxminddb:"city"`
	Continent struct {
		Names names `maxminddb:"names"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
		Names   names  `maxminddb:"names"`
	} `maxminddb:"country"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	Subdivisions []subdivision `maxminddb:"subdivisions"`
}

// cityPool recycles decoded City records, and their subdivision slices.
var cityPool = sync.Pool{New: func() any { return new(cityRecord) }}

// asnRecord is the part of an ASN (or ISP) record the pipeline reads.
type asnRecord struct {
	Number       uint64 `maxminddb:"autonomous_system_number"`
	Organization string `maxminddb:"autonomous_system_organization"`
}

// noASN marks an absent autonomous_system_number (the format stores it as a
// 32-bit value, so it can never be this).
const noASN = math.MaxUint64

// Lookup returns the source.geo.* and source.as.* fields for ip, or nil when
// neither database has a record for it. An IPv4-mapped IPv6 address is
// looked up as the IPv4 address it carries. A record the databases cannot
// decode gives no fields from that database; Lookup never panics.
func (db *DB) Lookup(ip netip.Addr) (out map[string]matcher.Value) {
	if db == nil || !ip.IsValid() {
		return nil
	}
	r := db.readers.Load()
	if r == nil {
		return nil
	}
	defer func() {
		if recover() != nil {
			out = nil
		}
	}()
	ip = ip.Unmap().WithZone("")
	if r.city != nil {
		out = lookupCity(r.city, ip, out)
	}
	if r.asn != nil {
		out = lookupASN(r.asn, ip, out)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func lookupCity(rd *maxminddb.Reader, ip netip.Addr, out map[string]matcher.Value) map[string]matcher.Value {
	res := rd.Lookup(ip)
	if !res.Found() {
		return out
	}
	rec := cityPool.Get().(*cityRecord)
	defer cityPool.Put(rec)
	subs := rec.Subdivisions[:cap(rec.Subdivisions)]
	clear(subs)
	*rec = cityRecord{Subdivisions: subs[:0]}
	rec.Location.Latitude, rec.Location.Longitude = math.NaN(), math.NaN()
	if err := res.Decode(rec); err != nil {
		return out
	}
	if out == nil {
		out = make(map[string]matcher.Value, maxFields)
	}
	putString(out, FieldContinentName, rec.Continent.Names.EN)
	putString(out, FieldCountryISOCode, rec.Country.ISOCode)
	putString(out, FieldCountryName, rec.Country.Names.EN)
	if n := len(rec.Subdivisions); n > 0 {
		sub := &rec.Subdivisions[n-1]
		if rec.Country.ISOCode != "" && sub.ISOCode != "" {
			putString(out, FieldRegionISOCode, rec.Country.ISOCode+"-"+sub.ISOCode)
		}
		putString(out, FieldRegionName, sub.Names.EN)
	}
	putString(out, FieldCityName, rec.City.Names.EN)
	lat, lon := rec.Location.Latitude, rec.Location.Longitude
	if !math.IsNaN(lat) && !math.IsNaN(lon) {
		out[FieldLocationLat] = matcher.Value{Text: strconv.FormatFloat(lat, 'f', -1, 64), Kind: matcher.KindNumber}
		out[FieldLocationLon] = matcher.Value{Text: strconv.FormatFloat(lon, 'f', -1, 64), Kind: matcher.KindNumber}
	}
	return out
}

func lookupASN(rd *maxminddb.Reader, ip netip.Addr, out map[string]matcher.Value) map[string]matcher.Value {
	res := rd.Lookup(ip)
	if !res.Found() {
		return out
	}
	rec := asnRecord{Number: noASN}
	if err := res.Decode(&rec); err != nil {
		return out
	}
	if rec.Number == noASN && rec.Organization == "" {
		return out
	}
	if out == nil {
		out = make(map[string]matcher.Value, 2)
	}
	if rec.Number != noASN {
		out[FieldASNumber] = matcher.Value{Text: strconv.FormatUint(rec.Number, 10), Kind: matcher.KindNumber}
	}
	putString(out, FieldASOrganization, rec.Organization)
	return out
}

// maxFields is the most fields one lookup sets.
const maxFields = 10

// putString sets a string field, leaving it out when the value is empty.
func putString(out map[string]matcher.Value, name, text string) {
	if text != "" {
		out[name] = matcher.Value{Text: text, Kind: matcher.KindString}
	}
}
