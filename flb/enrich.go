package flb

import (
	"github.com/trailwatch/trailwatch/conf"
	"github.com/trailwatch/trailwatch/matcher"
)

// openEnricher opens the GeoIP/ASN databases the settings name.
func openEnricher(set *conf.Settings) (matcher.Enricher, error) {
	return nil, nil
}
