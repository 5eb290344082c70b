package conf

import (
	"fmt"

	"github.com/trailwatch/trailwatch/fleet"
)

// sharedStateErrors checks the shared_state settings' shapes (package fleet
// opens the files and the connection when the instance starts): the URL,
// the prefix, cert and key together, and no file setting without
// shared_state.
func sharedStateErrors(s *Settings) []string {
	var errs []string
	if s.SharedState == "" {
		for _, kv := range [][2]string{{"shared_state_creds", s.SharedStateCreds}, {"shared_state_ca", s.SharedStateCA},
			{"shared_state_cert", s.SharedStateCert}, {"shared_state_key", s.SharedStateKey}} {
			if kv[1] != "" {
				errs = append(errs, fmt.Sprintf("property %s is set but shared_state is not: set shared_state to the fleet's NATS URL", kv[0]))
			}
		}
		return errs
	}
	if _, err := fleet.CheckURL(s.SharedState); err != nil {
		errs = append(errs, "property "+err.Error())
	}
	if err := fleet.CheckPrefix(s.SharedStatePrefix); err != nil {
		errs = append(errs, "property "+err.Error())
	}
	if (s.SharedStateCert == "") != (s.SharedStateKey == "") {
		errs = append(errs, "properties shared_state_cert and shared_state_key go together: set both or neither")
	}
	return errs
}
