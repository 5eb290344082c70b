package instance

import (
	"github.com/trailwatch/trailwatch/cloudtrail"
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/enrich"
)

// openEnricher opens the GeoIP/ASN databases the settings name (none: no
// source.geo.* and source.as.* fields).
func openEnricher(set *conf.Settings) (cloudtrail.Enricher, *enrich.DB, error) {
	db, err := enrich.Open(set.GeoIPDB, set.ASNDB)
	if err != nil {
		return nil, nil, err
	}
	if db == nil {
		return nil, nil, nil
	}
	return db, db, nil
}
